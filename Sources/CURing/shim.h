// liburing (apt: liburing-dev). liburing.h redefines glibc feature macros;
// including <features.h> first keeps this module compatible with the other
// C modules (fd_set clashes otherwise). Its static inline helpers import
// into Swift as they are.
#include <features.h>
#include <sys/socket.h>
#include <liburing.h>
#include <sys/signalfd.h>
