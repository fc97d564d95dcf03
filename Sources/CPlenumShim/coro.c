// coro.c — stackful coroutines for the simulator (see plenum_shim.h).
//
// A coroutine is entered the first time through its ucontext (makecontext:
// the only portable way onto a fresh stack); every later switch saves and
// restores registers with _setjmp/_longjmp, which, unlike swapcontext, do
// not save and restore the signal mask — swapcontext made a sigprocmask
// system call at every switch, and the simulator switches at a tenth of its
// memory operations (issue 24). Jumping between stacks is what these
// buffers are for here; the fortified longjmp would refuse it.
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "plenum_shim.h"

#include <setjmp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

struct plenum_coro {
    ucontext_t context;   // the first entry of a created coroutine
    jmp_buf jump;         // where it left off, once it has switched away
    int resumable;        // `jump` holds a context
    void *stack;      // mapping base (guard page first), NULL for main
    size_t mapped;
    void (*entry)(void *);
    void *arg;
    plenum_coro *exit_to;
};

plenum_coro *plenum_coro_main(void) {
    return calloc(1, sizeof(plenum_coro));
}

// makecontext passes ints only: split the pointer into two halves.
static void trampoline(unsigned hi, unsigned lo) {
    plenum_coro *c = (plenum_coro *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
    c->entry(c->arg);
    // The entry's frames are gone: resume where it asked to go, for good.
    plenum_coro *next = c->exit_to;
    if (next && next->resumable) _longjmp(next->jump, 1);
    if (next) setcontext(&next->context);
    abort();
}

void plenum_coro_exit_to(plenum_coro *coro, plenum_coro *next) { coro->exit_to = next; }

plenum_coro *plenum_coro_create(size_t stack_bytes, void (*entry)(void *), void *arg) {
    plenum_coro *c = calloc(1, sizeof(plenum_coro));
    if (!c) return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (stack_bytes + page - 1) / page * page + page;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) { free(c); return NULL; }
    mprotect(base, page, PROT_NONE); // guard: overflow faults instead of corrupting
    c->stack = base;
    c->mapped = size;
    c->entry = entry;
    c->arg = arg;
    getcontext(&c->context);
    c->context.uc_stack.ss_sp = (char *)base + page;
    c->context.uc_stack.ss_size = size - page;
    c->context.uc_link = NULL;
    uintptr_t p = (uintptr_t)c;
    makecontext(&c->context, (void (*)(void))trampoline, 2, (unsigned)(p >> 32), (unsigned)(p & 0xffffffffu));
    return c;
}

void plenum_coro_switch(plenum_coro *from, plenum_coro *to) {
    if (_setjmp(from->jump) == 0) {
        from->resumable = 1;
        if (to->resumable) _longjmp(to->jump, 1);
        setcontext(&to->context);   // its first entry: the trampoline
        abort();
    }
    // resumed by a later switch (or exit) to `from`
}

void plenum_coro_destroy(plenum_coro *c) {
    if (!c) return;
    if (c->stack) munmap(c->stack, c->mapped);
    free(c);
}
