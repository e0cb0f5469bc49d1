// nsenter runs before the Go runtime of a re-executed railcar init: it is the
// only place where a process is still single-threaded, which joining a user
// or mount namespace (setns) requires. See nsenter.go for the protocol.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <grp.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAXMSG 65536
#define MAXNS 16

static int sock = -1;

static void bail(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "error nsenter: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (errno && n < (int)sizeof(buf) - 40)
		n += snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(errno));
	if (sock >= 0)
		send(sock, buf, n, MSG_NOSIGNAL);
	_exit(1);
}

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (send(sock, buf, n, MSG_NOSIGNAL) != n)
		bail("send");
}

static void expect(const char *want)
{
	char buf[64];
	ssize_t n;
	do {
		n = recv(sock, buf, sizeof(buf) - 1, 0);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		errno = n < 0 ? errno : 0;
		bail("parent went away");
	}
	buf[n] = 0;
	if (strcmp(buf, want) != 0) {
		errno = 0;
		bail("unexpected message %s", buf);
	}
}

static int nstype(const char *name)
{
	static const struct { const char *n; int f; } t[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
		{"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].n, name) == 0)
			return t[i].f;
	return 0;
}

__attribute__((constructor)) static void nsenter(void)
{
	if (getenv("_RAILCAR_HOLD")) {
		// A user namespace holder (see linux/idmap.go): wait to be killed.
		for (;;)
			pause();
	}
	const char *env = getenv("_RAILCAR_INIT");
	if (env == NULL || *env == 0)
		return;
	sock = atoi(env);

	// A signal the runtime's caller ignored (nohup's SIGHUP, a daemon's
	// SIGPIPE) would stay ignored across execve into the workload, and a
	// shell there could not even trap it: the container starts with every
	// disposition at its default, as a fresh process would.
	// The raw system call: glibc's sigaction refuses the signals it keeps
	// for itself (32, 33), which a caller may have ignored all the same.
	for (int sig = 1; sig <= 64; sig++) {
		struct {
			void *handler;
			unsigned long flags;
			void *restorer;
			uint64_t mask;
		} old = {0}, dfl = {0};
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) == 0 && old.handler == (void *)SIG_IGN) {
			dfl.handler = (void *)SIG_DFL;
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
		}
	}

	// Setup processes are never dumpable: nothing in the container may
	// ptrace them or open their /proc files (CVE-2016-9962).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("prctl(PR_SET_DUMPABLE)");

	static char msg[MAXMSG];
	ssize_t len;
	do {
		len = recv(sock, msg, sizeof(msg) - 1, 0);
	} while (len < 0 && errno == EINTR);
	if (len <= 0)
		bail("read bootstrap");
	msg[len] = 0;

	int joinfd[MAXNS], jointype[MAXNS], njoin = 0, userfd = -1;
	int flags = 0, timens = 0;
	char offsets[256] = "";

	for (char *save = NULL, *line = strtok_r(msg, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind[16], name[16], arg[4096];
		errno = 0;
		if (sscanf(line, "join %15s %4095s", name, arg) == 2) {
			int t = nstype(name);
			if (t == 0 || njoin == MAXNS)
				bail("bad namespace %s", name);
			int fd = open(arg, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				bail("open namespace %s", arg);
			if (t == CLONE_NEWUSER) {
				userfd = fd;
			} else {
				joinfd[njoin] = fd;
				jointype[njoin++] = t;
			}
			if (t == CLONE_NEWTIME || t == CLONE_NEWPID)
				timens |= t;
		} else if (sscanf(line, "new %15s", name) == 1) {
			int t = nstype(name);
			if (t == 0)
				bail("bad namespace %s", name);
			flags |= t;
		} else if (strncmp(line, "timens ", 7) == 0) {
			// "timens monotonic S NS\nboottime S NS" with ';' for the newline
			snprintf(offsets, sizeof(offsets), "%s", line + 7);
			for (char *p = offsets; *p; p++)
				if (*p == ';')
					*p = '\n';
		} else if (sscanf(line, "%15s", kind) == 1 && strcmp(kind, "end") == 0) {
			break;
		} else {
			bail("bad bootstrap line %s", line);
		}
	}

	// Join the user namespace first: the others are owned by it.
	if (userfd >= 0) {
		if (setns(userfd, CLONE_NEWUSER) < 0)
			bail("setns user");
		close(userfd);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("become root in the joined user namespace");
	}
	// The mount namespace last: joining it changes our root.
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < njoin; i++) {
			if ((jointype[i] == CLONE_NEWNS) != (pass == 1))
				continue;
			if (setns(joinfd[i], jointype[i]) < 0)
				bail("setns %#x", jointype[i]);
			close(joinfd[i]);
		}

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("unshare user namespace");
		// The parent writes uid_map and gid_map.
		say("userns");
		expect("mapped");
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("become root in the new user namespace");
		flags &= ~CLONE_NEWUSER;
	}
	if (flags && unshare(flags) < 0)
		bail("unshare %#x", flags);
	if ((flags & CLONE_NEWTIME) && offsets[0]) {
		// Our /proc files belong to the host's root while we are not
		// dumpable; nothing else runs in these namespaces yet.
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			bail("prctl(PR_SET_DUMPABLE)");
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			bail("open timens_offsets");
		if (write(fd, offsets, strlen(offsets)) < 0)
			bail("write timens_offsets");
		close(fd);
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			bail("prctl(PR_SET_DUMPABLE)");
	}

	// Always fork once more: a new or joined pid or time namespace only
	// takes effect for children, and CLONE_PARENT makes the child a child of
	// our parent (railcar or the shim), which reaps it. This process exits.
	pid_t pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		bail("clone");
	if (pid > 0) {
		say("pid %d", pid);
		_exit(0);
	}
	// The child: the Go runtime starts after this returns and runs the init.
}
