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

#include <stdlib.h>
#include <unistd.h>

struct plenum_fdmsg {
    struct msghdr msg;
    struct iovec iov;
    size_t length;
    union { char buf[CMSG_SPACE(sizeof(int) * PLENUM_MAX_FDS)]; struct cmsghdr align; } control;
    unsigned char data[];
};

void *plenum_fdmsg_create(const void *data, size_t len, const int *fds, int n) {
    if (n < 0 || n > PLENUM_MAX_FDS) return NULL;
    struct plenum_fdmsg *m = calloc(1, sizeof *m + len);
    if (!m) return NULL;
    memcpy(m->data, data, len);
    m->length = len;
    m->iov.iov_base = m->data;
    m->iov.iov_len = len;
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
    if (n > 0) {
        m->msg.msg_control = m->control.buf;
        m->msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    return m;
}

void plenum_fdmsg_free(void *msg) { free(msg); }

size_t plenum_fdmsg_length(const void *msg) { return ((const struct plenum_fdmsg *)msg)->length; }

long plenum_recv_with_fds(int socket, void *data, size_t cap, int flags, int *fds, int maxfds, int *nfds) {
    struct iovec iov = { .iov_base = data, .iov_len = cap };
    union { char buf[CMSG_SPACE(sizeof(int) * PLENUM_MAX_FDS)]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    *nfds = 0;
    long n = recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < maxfds) fds[(*nfds)++] = fd; else close(fd);
        }
    }
    return n;
}

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int plenum_memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int plenum_peer_uid(int socket, unsigned int *uid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    return 0;
}

#include <spawn.h>

int plenum_spawn_close_from(void *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowfd);
}
