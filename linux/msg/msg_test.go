package msg

import (
	"errors"
	"io"
	"testing"
)

// TestErrorAfterUnreadMessage: a peer that fails with a message of ours
// still unread makes the kernel report ECONNRESET ahead of the peer's
// last datagram; the Error must come through all the same, then EOF.
func TestErrorAfterUnreadMessage(t *testing.T) {
	a, b, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	parent, child := New(a), New(b)
	defer parent.Close()
	if err := parent.Send(KindConfig, map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := child.SendError(errors.New("mount proc: permission denied")); err != nil {
		t.Fatal(err)
	}
	child.Close()
	_, _, err = parent.Recv()
	if err == nil || err.Error() != "mount proc: permission denied" {
		t.Fatalf("got %v, want the peer's error", err)
	}
	if _, _, err := parent.Recv(); err != io.EOF {
		t.Fatalf("after the error: got %v, want EOF", err)
	}
}
