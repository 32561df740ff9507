/* fakecli.h - the unit tests' stand-in for HAProxy's CLI: a forked process
 * accepting on a unix socket and handing each connection to the test's
 * serve function (which owns the fd), until fakecli_stop kills it. */
#ifndef HACME_FAKECLI_H
#define HACME_FAKECLI_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's pid; exits the test when the socket cannot be set up. */
static inline pid_t
fakecli_start(const char *path, void (*serve)(int fd, const void *arg), const void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd, cfd;
	pid_t pid;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 64) < 0) {
		perror("fake listen");
		exit(1);
	}
	if ((pid = fork()) < 0)
		exit(1);
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		while ((cfd = accept(lfd, NULL, NULL)) >= 0)
			serve(cfd, arg);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static inline void
fakecli_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

#endif
