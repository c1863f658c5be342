/*
 * The pod sandbox process for local test nodes (there is no registry to pull
 * registry.k8s.io/pause from). It only has to exist: it holds the pod's namespaces open.
 * When the pod shares one PID namespace it is PID 1 there, so it also reaps the orphans
 * that get reparented to it. As PID 1 the kernel delivers no signal it has no handler for,
 * so SIGINT and SIGTERM need one for the kubelet's stop to end it cleanly (exit 0) rather
 * than after the grace period, by SIGKILL.
 *
 *   gcc -static -Os -s -o pause pause.c
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	int saved = errno; /* a handler must not clobber the errno of what it interrupted */

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = stop;
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return 1;
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL))
		return 1;
	for (;;)
		pause();
}
