//! Run-time choice of the widest vector unit for a loop.

/// `widest_simd!(kernel(a: A, b: B))` (or `widest_simd!(kernel(a: A, b: B) -> R)` for a kernel
/// that returns an `R`) calls `kernel(a, b)`, with the caller's variables `a` and `b`, compiled
/// for the widest vector unit the processor has: AVX-512, else AVX2 (each with FMA), chosen at
/// run time on x86-64; elsewhere, or without either, the kernel as compiled for the target. One
/// binary then runs on every x86-64 processor and uses what each has.
///
/// `$kernel` must be a function marked `#[inline(always)]`, so that each of the two copies the
/// macro writes is vectorised for its level. A closure will not do: passed to a generic helper
/// with `#[target_feature]`, it was not inlined there and the loops lost their vectorisation
/// (training 19.0 → 14.5 pairs/s; BENCHMARKS.md, "Training at burn-flex's bits"). Enabling FMA
/// does not change results: Rust does not contract `a * b + c` into a fused multiply-add unless
/// the code asks for `mul_add`.
#[macro_export]
macro_rules! widest_simd {
    ($kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $crate::widest_simd!($kernel($($arg: $ty),*) -> ())
    };
    ($kernel:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) -> $ret {
                $kernel($($arg),*)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) -> $ret {
                $kernel($($arg),*)
            }
            let (has_avx2_fma, has_avx512) = (
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
                std::arch::is_x86_feature_detected!("avx512f"),
            );
            if has_avx2_fma && has_avx512 {
                // SAFETY: the processor has AVX-512F, AVX2 and FMA (checked just above).
                unsafe { avx512($($arg),*) }
            } else if has_avx2_fma {
                // SAFETY: the processor has AVX2 and FMA (checked just above).
                unsafe { avx2($($arg),*) }
            } else {
                $kernel($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $kernel($($arg),*)
        }
    }};
}
