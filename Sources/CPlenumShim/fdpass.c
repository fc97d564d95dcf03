// fdpass.c — SCM_RIGHTS through sendmsg/recvmsg (see plenum_shim.h).
#define _GNU_SOURCE
#include "plenum_shim.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

long plenum_send_with_fd(int socket, const void *data, size_t len, int fd) {
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(socket, &msg, MSG_NOSIGNAL);
}

long plenum_recv_with_fd(int socket, void *data, size_t cap, int *fd) {
    struct iovec iov = { .iov_base = data, .iov_len = cap };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    *fd = -1;
    long n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(fd, CMSG_DATA(c), sizeof(int));
            break;
        }
    }
    return n;
}
