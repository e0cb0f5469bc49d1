package msg_test

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux/initproc"
	"github.com/railcar-oci/railcar/linux/msg"
)

// pair returns both ends of a connected msg socket.
func pair(t testing.TB) (*msg.Conn, *msg.Conn) {
	t.Helper()
	a, b, err := msg.Pair()
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := msg.New(a), msg.New(b)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

var kinds = []string{msg.KindConfig, msg.KindConsole, msg.KindReady, msg.KindContinue,
	msg.KindSeccomp, msg.KindApplied, msg.KindError}

// seedConfig is what Engine.Create sends the init.
func seedConfig() *initproc.Config {
	return &initproc.Config{ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs",
		Spec:    &specs.Spec{Version: specs.Version, Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}}},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"}, ExtraFiles: 2, FifoFD: 5}
}

// encode is one datagram as Conn.Send writes it.
func encode(t testing.TB, kind string, data any) []byte {
	t.Helper()
	a, b := pair(t)
	if err := a.Send(kind, data); err != nil {
		t.Fatal(err)
	}
	raw, _, err := b.RecvRaw()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzRecv feeds one datagram to each side's decoder: Conn.Recv (the
// parent's loop in Create/Exec) and Conn.Expect into the data types the
// two sides exchange (initproc.Config for the init, initproc.Console for
// the parent). No input may panic; a decoded message has a kind; an
// "error" message always comes back as an error; and a Config that
// decodes survives a round trip through Send.
func FuzzRecv(f *testing.F) {
	f.Add(encode(f, msg.KindConfig, seedConfig()), uint8(0))
	f.Add(encode(f, msg.KindConsole, &initproc.Console{Slave: "/dev/pts/0"}), uint8(1))
	for _, k := range kinds[2:] {
		f.Add(encode(f, k, nil), uint8(2))
	}
	f.Add([]byte(`{"kind":"error","error":"boom"}`), uint8(0))
	f.Add([]byte(`{"kind":"config","data":null}`), uint8(0))
	f.Add([]byte(`{"kind":"config","data":{"spec":{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_NOTIFY"}}},"extraFiles":-1,"fifoFd":-7}}`), uint8(0))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		if len(data) > 1<<16 {
			return
		}
		a, b := pair(t)
		send := func() {
			if err := a.SendRaw(data); err != nil {
				t.Skipf("send: %v", err)
			}
		}
		// Recv, as the parent reads the init.
		send()
		m, files, err := b.Recv()
		for _, f := range files {
			f.Close()
		}
		switch {
		case errors.Is(err, io.EOF):
			if len(data) != 0 {
				t.Fatalf("EOF for a %d-byte datagram", len(data))
			}
			return
		case err == nil && m == nil:
			t.Fatal("no message and no error")
		case err == nil && m.Kind == msg.KindError:
			t.Fatal("an error message was not returned as an error")
		}
		// Expect, as the init reads its Config and the parent a Console.
		send()
		switch which % 3 {
		case 0:
			var c initproc.Config
			if _, err := b.Expect(msg.KindConfig, &c); err != nil {
				return
			}
			roundTrip(t, &c)
		case 1:
			var c initproc.Console
			b.Expect(msg.KindConsole, &c)
		default:
			b.Expect(kinds[int(which)%len(kinds)], nil)
		}
	})
}

// roundTrip sends c and checks that the init decodes the same Config.
func roundTrip(t *testing.T, c *initproc.Config) {
	t.Helper()
	a, b := pair(t)
	if err := a.Send(msg.KindConfig, c); err != nil {
		// Only what JSON cannot carry, e.g. an invalid UTF-8 key.
		return
	}
	var got initproc.Config
	if _, err := b.Expect(msg.KindConfig, &got); err != nil {
		t.Fatalf("a Config that was sent does not decode: %v", err)
	}
	x, _ := json.Marshal(c)
	y, _ := json.Marshal(&got)
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("Config changed in transit:\n%s\n%s", x, y)
	}
}
