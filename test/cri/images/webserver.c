/*
 * webserver: the stand-in for the nginx and hostnet-nginx images critest
 * pulls. It is built statically and installed as /usr/sbin/nginx, so the
 * process is named nginx, as the real one is, and it behaves as critest
 * expects nginx to:
 *   - its /proc/PID/cmdline contains "master process" (the ContainerPID spec
 *     greps /proc/1/cmdline for it), so it re-executes itself once with
 *     argv[0] "nginx: master process ...";
 *   - it writes its pid to /var/run/nginx.pid (the HostPID spec reads it);
 *   - it answers every HTTP request on $PORT (default 80) with 200 and a
 *     page (the networking, port-mapping and port-forward specs fetch it);
 *   - it exits at once on SIGTERM or SIGQUIT, as nginx does.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MASTER "nginx: master process"

static void quit(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv)
{
	static const char page[] =
		"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 45\r\nConnection: close\r\n\r\n"
		"<html><body>Welcome to nginx!</body></html>\r\n";
	struct sockaddr_in addr = { .sin_family = AF_INET };
	const char *port = getenv("PORT");
	char buf[4096];
	FILE *f;
	int s, c, one = 1;

	if (strncmp(argv[0], MASTER, strlen(MASTER)) != 0) {
		argv[0] = MASTER " /usr/sbin/nginx -g daemon off;";
		execv("/proc/self/exe", argv);
		perror("nginx: re-exec");
		return 1;
	}
	(void)argc;
	signal(SIGTERM, quit);
	signal(SIGQUIT, quit);
	signal(SIGINT, quit);
	signal(SIGPIPE, SIG_IGN);

	if ((f = fopen("/var/run/nginx.pid", "w")) != NULL) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	addr.sin_port = htons(port ? atoi(port) : 80);
	if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s, 64) < 0) {
		perror("nginx: listen");
		return 1;
	}
	printf("nginx: listening on port %d\n", ntohs(addr.sin_port));
	fflush(stdout);
	for (;;) {
		if ((c = accept(s, NULL, NULL)) < 0)
			continue;
		/* One read is enough for the GET requests critest sends. */
		if (read(c, buf, sizeof(buf)) > 0)
			if (write(c, page, sizeof(page) - 1) < 0)
				perror("nginx: write");
		close(c);
	}
}
