import CKernels

/// The number format of the text encoder's matrix products (the BERT layers' four linear
/// products; attention, GELU, LayerNorm and every other kernel stay fp32).
///
/// - `fp32`: the weights and products in fp32, the reference the golden tests hold the encoder to.
/// - `bf16`: the weights packed once to bfloat16 (half the memory, one copy each), each row of
///   activations rounded to bf16 inside the product, products summed in fp32
///   (`pck_gemm_packed_bf16`). Meant for CPUs with AVX512-BF16, where the product runs
///   `vdpbf16ps`; elsewhere it runs a portable body (the same sums, much slower), which tests
///   use to check the numerics on every CPU.
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }

    /// Whether this CPU (and its OS) runs bf16 products in hardware: AVX512-BF16 with AVX-512
    /// enabled, read from CPUID once at start-up.
    public static let cpuHasBF16 = pck_uses_avx512_bf16() == 1

    /// What the `auto` setting picks on this CPU: bf16 where the CPU has AVX512-BF16, else fp32.
    /// bf16 passed the accuracy guard on all-MiniLM-L6-v2 and the default bundle
    /// (`BF16AccuracyTests`); a text encoder that fails it should be pinned to fp32.
    public static var automatic: Precision { cpuHasBF16 ? .bf16 : .fp32 }
}
