// liburing (apt: liburing-dev). liburing.h redefines glibc feature macros;
// including <features.h> first keeps this module compatible with the other
// C modules (fd_set clashes otherwise). Its static inline helpers import
// into Swift as they are.
#include <features.h>
#include <sys/socket.h>
#include <liburing.h>
#include <sys/signalfd.h>

// Whether the loop has something to serve: completions queued, or task
// work the kernel holds until this task enters it (a ring set up with
// IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG posts no IPI).
static inline int plenum_uring_work_pending(struct io_uring *ring) {
    return io_uring_cq_ready(ring) > 0 || (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN) != 0;
}
