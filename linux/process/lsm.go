package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// AppArmor and SELinux labels are set "on exec": they take effect at the
// workload's execve, so the runtime's remaining steps run unconfined.

// checkAppArmor fails clearly when a profile is asked for on a host without
// AppArmor, instead of an EINVAL from procfs later.
func checkAppArmor(profile string) error {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err == nil && strings.HasPrefix(string(data), "Y") {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("apparmor profile %q: check whether AppArmor is enabled: %w", profile, err)
	}
	if _, err := os.Stat("/sys/module"); errors.Is(err, os.ErrNotExist) {
		// No sysfs in the container: let the write decide.
		return nil
	}
	return fmt.Errorf("apparmor profile %q requested but AppArmor is not enabled on this host", profile)
}

// setAppArmorProfile is aa_change_onexec: "exec <profile>" written to the
// thread's AppArmor exec attribute.
func setAppArmorProfile(profile string) error {
	if profile == "" {
		return nil
	}
	name := "thread-self/attr/apparmor/exec"
	if _, err := os.Stat("/proc/" + name); errors.Is(err, os.ErrNotExist) {
		name = "thread-self/attr/exec" // kernels before 5.8
	}
	if err := writeProc(name, "exec "+profile); err != nil {
		return fmt.Errorf("apply apparmor profile %q: %w", profile, err)
	}
	return nil
}

// selinuxEnabled reports whether SELinux is active. selinuxfs is registered
// only when SELinux was enabled at boot (runtime disabling is gone since
// Linux 6.4), and /proc/filesystems is readable inside the container where
// /sys/fs/selinux usually is not mounted.
func selinuxEnabled() (bool, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == "selinuxfs" {
			return true, nil
		}
	}
	return false, sc.Err()
}

func checkSELinux(label string) error {
	on, err := selinuxEnabled()
	if err != nil {
		return fmt.Errorf("selinux label %q: check whether SELinux is enabled: %w", label, err)
	}
	if !on {
		return fmt.Errorf("selinux label %q requested but SELinux is not enabled on this host", label)
	}
	return nil
}

func setSELinuxLabel(label string) error {
	if label == "" {
		return nil
	}
	if err := writeProc("thread-self/attr/exec", label); err != nil {
		return fmt.Errorf("set selinux exec label %q: %w", label, err)
	}
	return nil
}

// setKeyLabel sets the SELinux label of keys (keyrings) this thread creates.
func setKeyLabel(label string) error {
	if err := writeProc("thread-self/attr/keycreate", label); err != nil {
		return fmt.Errorf("set selinux key label %q: %w", label, err)
	}
	return nil
}

func writeProc(name, value string) error {
	f, err := OpenProc(name, os.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write([]byte(value)); err != nil {
		return err
	}
	return nil
}
