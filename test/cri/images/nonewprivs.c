/*
 * nonewprivs: the stand-in for registry.k8s.io/e2e-test-images/nonewprivs.
 * Installed setuid root and run as an unprivileged user: it prints its
 * effective uid, which stays the caller's when no_new_privs is set.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
