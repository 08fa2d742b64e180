//! The `adam` executable: the command line is the library's ([`adam_trainer::cli`]).

use std::os::raw::c_int;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: with glibc's, every forward pass gives its large
/// tensors back to the kernel and faults them in again (a million page faults per 5 training
/// steps); mimalloc keeps them (BENCHMARKS.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (what libmimalloc-sys 0.1 builds; it
/// names no constant for it).
const MI_OPTION_PURGE_DELAY: c_int = 15;
/// v3's default purge delay (ms): how the option above is recognised before it is changed.
const MI_DEFAULT_PURGE_DELAY: std::os::raw::c_long = 1000;

fn main() -> ExitCode {
    keep_freed_memory();
    adam_trainer::cli::main()
}

/// Never return freed memory to the kernel: a training step frees and reallocates the same
/// buffers, and even v3's one-second delay leaves a fifth of the speed on the table. Peak memory
/// stays flat (the same after 5 and 15 steps, 1,000 and 3,000 passages). A `MIMALLOC_PURGE_DELAY`
/// set by the user is kept.
fn keep_freed_memory() {
    // SAFETY: reading and setting a process-wide option of the allocator in use; mimalloc allows
    // it at any time, and no other thread exists yet.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY
            && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
        {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}
