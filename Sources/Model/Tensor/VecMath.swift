/// Branch-free `exp` and GELU for the element-wise hot loops (libm's `expf` / `erff` calls cost
/// more than a tenth of a forward pass at batch 8).
///
/// Written as scalar code without calls or branches, so that in optimised builds LLVM vectorises
/// the loops that use them; explicit `SIMD8` code would be as fast there but is dozens of times
/// slower in debug builds, where the test suite runs.
enum VecMath {
    /// `e^x`, relative error about 2e-7 (a few ulp).
    ///
    /// Range reduction `x = n ln2 + r` with |r| <= ln2/2 (ln2 split in two parts so `r` is exact
    /// enough), a degree-6 Taylor polynomial for `e^r` (truncation error below 1.2e-7), then the
    /// exponent bits set to `n`. Inputs are clamped to [-87, 88] so `2^n` stays a normal float,
    /// and below -87 the result is exactly 0 (so masked attention keys get probability 0).
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let xc = min(max(x, -87), 88)
        // Round to nearest with the 1.5·2^23 trick: after the add, the integer n sits in the low
        // mantissa bits of `shifted`.
        let magic: Float = 12582912
        let shifted = xc * 1.4426950408889634 + magic
        let n = shifted - magic
        let r = (xc - n * 0.693359375) - n * -2.12194440e-4
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let exponent = (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23
        // A select, not a branch: the loop still vectorises.
        return x < -87 ? 0 : p * Float(bitPattern: exponent)
    }

    /// GELU with the exact erf form, `x/2 · (1 + erf(x/√2))`.
    ///
    /// erfc from Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 for all arguments):
    /// `erfc(z) = t·P(t)·e^(-z²)`, `t = 1/(1 + 0.3275911 z)`, z = |x|/√2; then
    /// `1 + erf(x/√2) = 1 + sign(x)·(1 - erfc(z))` with the sign copied bitwise. The GELU error is
    /// at most |x|·1e-7, far inside the 1e-4 parity with PyTorch's erf.
    @inline(__always)
    static func gelu(_ x: Float) -> Float {
        let z = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF) * 0.70710678118654752
        let t = 1 / (1 + 0.3275911 * z)
        var p: Float = 1.061405429
        p = p * t - 1.453152027
        p = p * t + 1.421413741
        p = p * t - 0.284496736
        p = p * t + 0.254829592
        let erfc = p * t * exp(-z * z)
        let onePlusErf = 1 + Float(bitPattern: (1 - erfc).bitPattern | (x.bitPattern & 0x8000_0000))
        return 0.5 * x * onePlusErf
    }
}
