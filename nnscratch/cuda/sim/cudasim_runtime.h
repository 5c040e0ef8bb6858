// cudasim runtime: runs the threads of one CUDA block as fibers on one OS thread.
//
// One translation unit per kernel file: cudasim_builtins.h (which includes this file), then the
// unmodified .cu source, then a generated table of its kernels. Everything here has internal
// linkage, so every compiled module carries its own copy and nothing is shared between modules.
//
// Scheduling: the scheduler resumes every runnable fiber once per pass (in forward, reverse or
// random order); a fiber runs until it waits at __syncthreads, at a warp-level op, or returns.
// After a pass the scheduler releases warp ops whose lanes have all arrived, then the block barrier
// once every thread waits there. Anything else is divergence or deadlock and ends the launch.
#pragma once

#include <csetjmp>
#include <cstdarg>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <sys/mman.h>
#include <type_traits>
#include <ucontext.h>
#include <unistd.h>
#include <utility>

#if defined(__x86_64__) && !defined(CUDASIM_USE_UCONTEXT)
#define CUDASIM_X86_64_SWITCH 1
#endif

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

static constexpr int warpSize = 32;

namespace cudasim {

enum State : int { RUNNABLE = 0, AT_BLOCK_BARRIER = 1, AT_WARP_OP = 2, DONE = 3 };
enum Op : int { OP_SYNC = 0, OP_SYNC_COUNT, OP_SYNC_AND, OP_SYNC_OR, OP_SHFL, OP_BALLOT, OP_ANY, OP_ALL };
enum Status : int {
    OK = 0, BARRIER_DIVERGENCE = 1, DEADLOCK = 2, OUT_OF_BOUNDS = 3, MEMORY_FAULT = 4,
    STACK_OVERFLOW = 5, BAD_LAUNCH = 6, ARITHMETIC_FAULT = 7, WARP_MISUSE = 8,
};
enum Order : int { FORWARD = 0, REVERSE = 1, RANDOM = 2 };

static const char* const kOpNames[] = {
    "__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or",
    "a warp shuffle", "__ballot_sync", "__any_sync", "__all_sync",
};

struct Fiber {
#if CUDASIM_X86_64_SWITCH
    void* sp;
#else
    ucontext_t context;
#endif
    uint3 thread_idx;
    unsigned int linear, lane, warp;
    int state, op, line, pred, src_lane;
    unsigned int mask;
    unsigned long long value, result;
};

static constexpr size_t kStackBytes = 128 * 1024;
static constexpr size_t kDynamicSharedBytes = 48 * 1024;

// --- State of the running launch (one launch at a time: the Python driver holds a lock) ---------
static Fiber* g_cur = nullptr;
static Fiber* g_fibers = nullptr;
static unsigned int g_fiber_capacity = 0;
static unsigned int g_nthreads = 0;
static unsigned int g_n_done = 0, g_n_at_block = 0, g_n_at_warp = 0;
static uint3 g_block_idx;
static dim3 g_block_dim, g_grid_dim;
static void (*g_invoke)(void**) = nullptr;
static void** g_args = nullptr;
static int g_status = OK;
static char g_message[1024];
static unsigned long long g_rng = 0x9E3779B97F4A7C15ull;
static unsigned int* g_order = nullptr;
alignas(64) static unsigned char g_dynamic_shared[kDynamicSharedBytes];

// Stacks: one mapping, each stack above a PROT_NONE page that catches overflow.
static unsigned char* g_stacks = nullptr;
static size_t g_stacks_bytes = 0;
static size_t g_page = 4096;

#if CUDASIM_X86_64_SWITCH
static void* g_scheduler_sp = nullptr;
#else
static ucontext_t g_scheduler_context;
#endif

// --- Context switch ------------------------------------------------------------------------------
#if CUDASIM_X86_64_SWITCH
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save, loads
// `to` and pops the registers saved there: about ten instructions, versus a syscall-free but much
// larger swapcontext (which also saves the signal mask and the FPU state).
asm(R"(
    .text
    .p2align 4
    .hidden cudasim_switch_stack
    .type cudasim_switch_stack, @function
cudasim_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudasim_switch_stack, .-cudasim_switch_stack
)");
extern "C" void cudasim_switch_stack(void** save, void* to);
#endif

static inline void yield_to_scheduler() {
    asm volatile("" ::: "memory");
#if CUDASIM_X86_64_SWITCH
    cudasim_switch_stack(&g_cur->sp, g_scheduler_sp);
#else
    swapcontext(&g_cur->context, &g_scheduler_context);
#endif
    asm volatile("" ::: "memory");
}

static inline void resume(Fiber* f) {
    g_cur = f;
#if CUDASIM_X86_64_SWITCH
    cudasim_switch_stack(&g_scheduler_sp, f->sp);
#else
    swapcontext(&g_scheduler_context, &f->context);
#endif
}

static void fiber_main() {
    g_invoke(g_args);
    g_cur->state = DONE;
    ++g_n_done;
    yield_to_scheduler();
    __builtin_trap();  // a finished fiber is never resumed
}

static void start_fiber(Fiber* f, unsigned char* stack_low) {
    unsigned char* stack_top = stack_low + kStackBytes;
#if CUDASIM_X86_64_SWITCH
    void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t(15));
    *--sp = nullptr;                                   // fiber_main's return address: never used
    *--sp = reinterpret_cast<void*>(&fiber_main);      // where cudasim_switch_stack's `ret` goes
    for (int i = 0; i < 6; ++i) *--sp = nullptr;       // rbp, rbx, r12-r15
    f->sp = sp;
#else
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = stack_low;
    f->context.uc_stack.ss_size = kStackBytes;
    f->context.uc_link = nullptr;
    makecontext(&f->context, fiber_main, 0);
#endif
}

static bool ensure_capacity(unsigned int n) {
    if (n <= g_fiber_capacity) return true;
    size_t stride = kStackBytes + g_page;
    size_t bytes = stride * n;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) return false;
    for (unsigned int i = 0; i < n; ++i) mprotect(static_cast<unsigned char*>(mem) + i * stride, g_page, PROT_NONE);
    void* fibers = std::realloc(g_fibers, sizeof(Fiber) * n);
    void* order = std::realloc(g_order, sizeof(unsigned int) * n);
    if (!fibers || !order) return false;
    if (g_stacks) munmap(g_stacks, g_stacks_bytes);
    g_stacks = static_cast<unsigned char*>(mem);
    g_stacks_bytes = bytes;
    g_fibers = static_cast<Fiber*>(fibers);
    g_order = static_cast<unsigned int*>(order);
    g_fiber_capacity = n;
    return true;
}

static inline unsigned long long next_random() {  // xorshift64*
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static void fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int status, const char* fmt, ...) {
    if (g_status != OK) return;
    g_status = status;
    int used = std::snprintf(g_message, sizeof g_message, "block (%u,%u,%u): ", g_block_idx.x, g_block_idx.y,
                             g_block_idx.z);
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(g_message + used, sizeof g_message - used, fmt, ap);
    va_end(ap);
}

#define CUDASIM_T(f) (f)->thread_idx.x, (f)->thread_idx.y, (f)->thread_idx.z

// --- Barriers, called from kernel code --------------------------------------------------------
static inline int block_barrier(int op, int pred, int line) {
    Fiber* f = g_cur;
    f->state = AT_BLOCK_BARRIER;
    f->op = op;
    f->pred = pred != 0;
    f->line = line;
    ++g_n_at_block;
    yield_to_scheduler();
    return static_cast<int>(g_cur->result);
}

static inline unsigned long long warp_op(int op, unsigned int mask, unsigned long long value, int src_lane,
                                         int pred, int line) {
    Fiber* f = g_cur;
    f->state = AT_WARP_OP;
    f->op = op;
    f->mask = mask;
    f->value = value;
    f->src_lane = src_lane;
    f->pred = pred != 0;
    f->line = line;
    ++g_n_at_warp;
    yield_to_scheduler();
    return g_cur->result;
}

// --- Scheduler --------------------------------------------------------------------------------
static bool release_warps() {
    bool released = false;
    unsigned int nwarps = (g_nthreads + 31) / 32;
    for (unsigned int w = 0; w < nwarps; ++w) {
        Fiber* lanes = g_fibers + w * 32;
        unsigned int n = g_nthreads - w * 32 < 32 ? g_nthreads - w * 32 : 32;
        unsigned int arrived = 0, done = 0, wanted = 0, votes = 0;
        for (unsigned int l = 0; l < n; ++l) {
            if (lanes[l].state == AT_WARP_OP) {
                arrived |= 1u << l;
                wanted |= lanes[l].mask;
                if (lanes[l].pred) votes |= 1u << l;
            } else if (lanes[l].state == DONE) {
                done |= 1u << l;
            }
        }
        if (!arrived) continue;
        unsigned int exists = n == 32 ? 0xFFFFFFFFu : (1u << n) - 1;
        if ((wanted & exists & ~done & ~arrived) != 0) continue;  // a named lane has not arrived yet
        for (unsigned int l = 0; l < n; ++l) {
            Fiber* f = lanes + l;
            if (f->state != AT_WARP_OP) continue;
            unsigned int group = f->mask & arrived;
            switch (f->op) {
                case OP_SHFL: {
                    int src = f->src_lane;
                    f->result = (arrived >> src) & 1u ? lanes[src].value : f->value;
                    break;
                }
                case OP_BALLOT: f->result = votes & group; break;
                case OP_ANY: f->result = (votes & group) != 0; break;
                case OP_ALL: f->result = (votes & group) == group; break;
                default: f->result = 0; break;
            }
            f->state = RUNNABLE;
            --g_n_at_warp;
        }
        released = true;
    }
    return released;
}

static bool release_block_barrier() {
    Fiber* waiting = nullptr;
    Fiber* exited = nullptr;
    unsigned long long count = 0;
    for (unsigned int i = 0; i < g_nthreads; ++i) {
        Fiber* f = g_fibers + i;
        if (f->state == DONE) {
            if (!exited) exited = f;
            continue;
        }
        if (!waiting) waiting = f;
        if (f->line != waiting->line || f->op != waiting->op) {
            fail(BARRIER_DIVERGENCE,
                 "barrier divergence: thread (%u,%u,%u) waits at %s on line %d while thread (%u,%u,%u) waits at "
                 "%s on line %d",
                 CUDASIM_T(waiting), kOpNames[waiting->op], waiting->line, CUDASIM_T(f), kOpNames[f->op], f->line);
            return false;
        }
        count += f->pred;
    }
    if (exited) {
        fail(BARRIER_DIVERGENCE,
             "barrier divergence: thread (%u,%u,%u) waits at %s on line %d but thread (%u,%u,%u) has already "
             "returned (an early return or a barrier inside a branch not taken by every thread)",
             CUDASIM_T(waiting), kOpNames[waiting->op], waiting->line, CUDASIM_T(exited));
        return false;
    }
    unsigned long long n = g_n_at_block;
    for (unsigned int i = 0; i < g_nthreads; ++i) {
        Fiber* f = g_fibers + i;
        switch (f->op) {
            case OP_SYNC_COUNT: f->result = count; break;
            case OP_SYNC_AND: f->result = count == n; break;
            case OP_SYNC_OR: f->result = count != 0; break;
            default: f->result = 0; break;
        }
        f->state = RUNNABLE;
    }
    g_n_at_block = 0;
    return true;
}

static void report_deadlock() {
    Fiber* warp_waiter = nullptr;
    Fiber* block_waiter = nullptr;
    for (unsigned int i = 0; i < g_nthreads; ++i) {
        Fiber* f = g_fibers + i;
        if (f->state == AT_WARP_OP && !warp_waiter) warp_waiter = f;
        if (f->state == AT_BLOCK_BARRIER && !block_waiter) block_waiter = f;
    }
    if (warp_waiter && block_waiter) {
        fail(DEADLOCK,
             "deadlock: thread (%u,%u,%u) waits at %s on line %d (mask 0x%08x) for lanes of its warp, but thread "
             "(%u,%u,%u) waits at %s on line %d",
             CUDASIM_T(warp_waiter), kOpNames[warp_waiter->op], warp_waiter->line, warp_waiter->mask,
             CUDASIM_T(block_waiter), kOpNames[block_waiter->op], block_waiter->line);
    } else if (warp_waiter) {
        fail(DEADLOCK,
             "deadlock: thread (%u,%u,%u) waits at %s on line %d (mask 0x%08x) for lanes that have returned or "
             "do not exist",
             CUDASIM_T(warp_waiter), kOpNames[warp_waiter->op], warp_waiter->line, warp_waiter->mask);
    } else {
        fail(DEADLOCK, "deadlock: no thread can make progress");
    }
}

static void arrange_order(unsigned int* order, unsigned int n, int how) {
    for (unsigned int i = 0; i < n; ++i) order[i] = how == REVERSE ? n - 1 - i : i;
    if (how == RANDOM) {
        for (unsigned int i = n - 1; i > 0; --i) {
            unsigned int j = static_cast<unsigned int>(next_random() % (i + 1));
            unsigned int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
}

static void run_block(int how) {
    const unsigned int bx = g_block_dim.x, by = g_block_dim.y;
    for (unsigned int i = 0; i < g_nthreads; ++i) {
        Fiber* f = g_fibers + i;
        f->thread_idx = uint3{i % bx, (i / bx) % by, i / (bx * by)};
        f->linear = i;
        f->lane = i % 32;
        f->warp = i / 32;
        f->state = RUNNABLE;
        f->op = OP_SYNC;
        f->line = 0;
        start_fiber(f, g_stacks + i * (kStackBytes + g_page) + g_page);
    }
    g_n_done = g_n_at_block = g_n_at_warp = 0;
    arrange_order(g_order, g_nthreads, how);
    for (;;) {
        for (unsigned int k = 0; k < g_nthreads; ++k) {
            Fiber* f = g_fibers + g_order[k];
            if (f->state == RUNNABLE) resume(f);
        }
        if (g_status != OK) return;
        if (g_n_done == g_nthreads) return;
        if (g_n_at_warp > 0 && release_warps()) {
        } else if (g_n_at_warp == 0 && g_n_at_block > 0) {
            if (!release_block_barrier()) return;
        } else {
            report_deadlock();
            return;
        }
        if (how == RANDOM) arrange_order(g_order, g_nthreads, how);
    }
}

// --- Memory faults: a SIGSEGV during a launch jumps back to the launch, never kills Python -----
struct GuardedArray {
    unsigned long long begin, end, guard_end, arg_index;
};

static sigjmp_buf g_fault_jump;
static volatile sig_atomic_t g_in_launch = 0;
static volatile unsigned long long g_fault_address = 0;
static volatile int g_fault_signal = 0, g_fault_is_write = -1;
alignas(16) static unsigned char g_alt_stack[64 * 1024];

static void on_fault(int sig, siginfo_t* info, void* context) {
    if (!g_in_launch) {  // not ours: restore the default action and let the fault happen again
        signal(sig, SIG_DFL);
        return;
    }
    g_fault_signal = sig;
    g_fault_address = reinterpret_cast<unsigned long long>(info->si_addr);
#if defined(__x86_64__)
    g_fault_is_write = (static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) ? 1 : 0;
#else
    (void)context;
#endif
    g_in_launch = 0;
    siglongjmp(g_fault_jump, 1);
}

static void describe_fault(const GuardedArray* arrays, int narrays, long long* info) {
    unsigned long long addr = g_fault_address;
    const char* kind = g_fault_is_write == 1 ? "write" : g_fault_is_write == 0 ? "read" : "access";
    info[2] = static_cast<long long>(addr);
    info[3] = g_fault_is_write;
    if (g_fault_signal == SIGFPE) {
        fail(ARITHMETIC_FAULT, "arithmetic fault (integer division by zero or overflow) in a thread");
        return;
    }
    for (int i = 0; i < narrays; ++i) {
        if (addr >= arrays[i].end && addr < arrays[i].guard_end) {
            info[0] = static_cast<long long>(arrays[i].arg_index);
            info[1] = static_cast<long long>(addr - arrays[i].begin);
            fail(OUT_OF_BOUNDS, "out-of-bounds %s %llu bytes past the end of argument #%llu (an array of %llu bytes)",
                 kind, addr - arrays[i].end, arrays[i].arg_index, arrays[i].end - arrays[i].begin);
            return;
        }
    }
    if (g_stacks && addr >= reinterpret_cast<unsigned long long>(g_stacks) &&
        addr < reinterpret_cast<unsigned long long>(g_stacks) + g_stacks_bytes) {
        fail(STACK_OVERFLOW, "stack overflow in a thread (more than %zu KiB of local variables or recursion)",
             kStackBytes / 1024);
        return;
    }
    fail(MEMORY_FAULT, "invalid memory %s at address 0x%llx (not next to any array argument)", kind, addr);
}

// --- Kernel table, filled by the code generated after the kernel source ------------------------
struct KernelEntry {
    const char* name;
    void (*invoke)(void**);
    const char* (*signature)();  // C types of the parameters, each followed by ';'
};

static inline void set_rng_seed(unsigned long long seed) { g_rng = seed * 0x9E3779B97F4A7C15ull + 1; }

// Every `__shared__` variable lives in this section (see cudasim_builtins.h); the linker defines
// its bounds, so each block can start with shared memory filled with 0xFF bytes (NaN floats, -1
// ints): reading shared memory before writing it then shows up as a wrong answer.
extern "C" unsigned char __start_cudasim_smem[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_cudasim_smem[] __attribute__((weak, visibility("hidden")));

static void poison_shared_memory(unsigned long long dynamic_shared) {
    if (__start_cudasim_smem && __stop_cudasim_smem)
        std::memset(__start_cudasim_smem, 0xFF, static_cast<size_t>(__stop_cudasim_smem - __start_cudasim_smem));
    std::memset(g_dynamic_shared, 0xFF, static_cast<size_t>(dynamic_shared));
}

static int launch(const KernelEntry& kernel, const unsigned int* grid, const unsigned int* block,
                  unsigned long long dynamic_shared, void** args, int how, unsigned long long seed,
                  const GuardedArray* arrays, int narrays, char* message, int message_len, long long* info) {
    g_status = OK;
    g_message[0] = '\0';
    g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    g_block_idx = uint3{0, 0, 0};
    unsigned int nthreads = block[0] * block[1] * block[2];
    if (nthreads == 0 || dynamic_shared > kDynamicSharedBytes || !ensure_capacity(nthreads)) {
        fail(BAD_LAUNCH, "cannot run %u threads with %llu bytes of dynamic shared memory", nthreads, dynamic_shared);
    } else {
        g_nthreads = nthreads;
        g_block_dim = dim3(block[0], block[1], block[2]);
        g_grid_dim = dim3(grid[0], grid[1], grid[2]);
        g_invoke = kernel.invoke;
        g_args = args;
        set_rng_seed(seed);

        stack_t alt{}, old_alt{};
        alt.ss_sp = g_alt_stack;
        alt.ss_size = sizeof g_alt_stack;
        sigaltstack(&alt, &old_alt);
        struct sigaction action{}, old_segv{}, old_bus{}, old_fpe{};
        action.sa_sigaction = on_fault;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &old_segv);
        sigaction(SIGBUS, &action, &old_bus);
        sigaction(SIGFPE, &action, &old_fpe);

        if (sigsetjmp(g_fault_jump, 1) == 0) {
            g_in_launch = 1;
            unsigned long long nblocks = 1ull * grid[0] * grid[1] * grid[2];
            // Block order: forward, reverse, or a random affine permutation i -> (a*i + b) mod n.
            unsigned long long a = 1, b = 0;
            if (how == RANDOM && nblocks > 1) {
                do a = next_random() % nblocks; while (a == 0 || std::gcd(a, nblocks) != 1);
                b = next_random() % nblocks;
            }
            for (unsigned long long i = 0; i < nblocks && g_status == OK; ++i) {
                unsigned long long id = how == REVERSE ? nblocks - 1 - i
                                                        : static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * i + b) % nblocks);
                g_block_idx = uint3{static_cast<unsigned int>(id % grid[0]),
                                    static_cast<unsigned int>((id / grid[0]) % grid[1]),
                                    static_cast<unsigned int>(id / (1ull * grid[0] * grid[1]))};
                poison_shared_memory(dynamic_shared);
                run_block(how);
            }
            g_in_launch = 0;
        } else {
            describe_fault(arrays, narrays, info);
        }
        sigaction(SIGSEGV, &old_segv, nullptr);
        sigaction(SIGBUS, &old_bus, nullptr);
        sigaction(SIGFPE, &old_fpe, nullptr);
        sigaltstack(&old_alt, nullptr);
    }
    std::snprintf(message, static_cast<size_t>(message_len), "%s", g_message);
    return g_status;
}

}  // namespace cudasim

#define threadIdx (::cudasim::g_cur->thread_idx)
#define blockIdx (::cudasim::g_block_idx)
#define blockDim (::cudasim::g_block_dim)
#define gridDim (::cudasim::g_grid_dim)
