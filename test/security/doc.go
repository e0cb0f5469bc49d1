// Package security holds railcar's regression tests for the container
// runtime CVEs of runc and containerd (one test per CVE, named after it),
// the seccomp default-profile, errnoRet and notify tests. Each test mounts
// the attack against the railcar command line and, where it applies, the
// containerd shim, and runs it against runc 1.5.3 as a yardstick: a runc
// result is reported in the log and never fails the test.
//
// The racing attacks run for RAILCAR_RACE_TIME each (a Go duration, default
// 10s; runc's yardstick runs get RAILCAR_YARDSTICK_RACE_TIME, default 3s).
// They need root, a static /bin/busybox, and for the shim and yardstick
// parts containerd (test/containerd.sh) and runc (test/setup.sh). A missing
// prerequisite skips with the reason, or fails when
// RAILCAR_REQUIRE_INTEGRATION is set. docs/security.md maps each CVE to
// its attack, railcar's defence and its test.
package security
