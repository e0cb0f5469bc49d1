// Package cli holds the integration tests of the railcar command line: they
// drive the real binary as root against bundles with a busybox rootfs and
// check each feature from inside the container and from the host.
//
// They need root, a static /bin/busybox (Debian's busybox-static) and the
// tools named by each test (ip, ps). When one is missing a test skips with
// the reason, or fails when RAILCAR_REQUIRE_INTEGRATION is set. The binary
// is $RAILCAR_BINARY, else bin/railcar, else one built for the run.
package cli
