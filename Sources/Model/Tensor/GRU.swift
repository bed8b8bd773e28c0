import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One direction of one layer of PyTorch's `nn.GRU`, starting from a zero state:
///
/// ```
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 - z) ⊙ n + z ⊙ h
/// ```
/// `weight_ih` stacks the r, z, n rows (`[3h, in]`), as does `weight_hh` (`[3h, h]`).
public struct GRUDirection: Sendable {
    /// `W_i·` and `b_i·`: `weight_ih_l0` / `bias_ih_l0`.
    public let input: Linear
    /// `W_h·` and `b_h·`: `weight_hh_l0` / `bias_hh_l0`.
    public let hidden: Linear

    /// Checks that both projections give the three gates of one hidden size.
    public init(input: Linear, hidden: Linear) throws(InferenceError) {
        let h = hidden.inFeatures
        guard hidden.outFeatures == 3 * h, input.outFeatures == 3 * h, input.bias != nil, hidden.bias != nil else {
            throw .shapeMismatch(expected: [3 * h, h], found: [input.outFeatures, hidden.outFeatures, h],
                                 context: "GRU weights (weight_ih [3h, in], weight_hh [3h, h], both with bias)")
        }
        self.input = input
        self.hidden = hidden
    }

    /// The state width h.
    public var hiddenSize: Int { hidden.inFeatures }
    /// The input width.
    public var inputSize: Int { input.inFeatures }

    /// Runs the recurrence over each sequence of rows, from its first row or (reversed) its last.
    ///
    /// - Parameters:
    ///   - x: `[rows, in]`, the sequences back to back.
    ///   - sequences: the row range of each sequence; each starts again from a zero state.
    /// - Returns: `[rows, h]`, the state after reading each row (row order, whatever the direction).
    public func run(_ x: Tensor, sequences: [Range<Int>], reversed: Bool) throws(InferenceError) -> Tensor {
        for sequence in sequences where sequence.lowerBound < 0 || sequence.upperBound > x.rowCount {
            throw .shapeMismatch(expected: [sequence.upperBound, inputSize], found: x.shape, context: "GRU sequence \(sequence)")
        }
        // All input projections in one product; only the h-dependent part is sequential.
        let gatesFromInput = try input(x)
        var states = Tensor(zeros: [x.rowCount, hiddenSize])
        guard let bias = hidden.bias else { return states }
        gatesFromInput.data.withUnsafeBufferPointer { gi in
            hidden.weight.data.withUnsafeBufferPointer { whh in
                bias.withUnsafeBufferPointer { bhh in
                    states.data.withUnsafeMutableBufferPointer { out in
                        guard let gi = gi.baseAddress, let whh = whh.baseAddress, let bhh = bhh.baseAddress,
                              let out = out.baseAddress else { return }
                        for sequence in sequences where !sequence.isEmpty {
                            Self.recur(gatesFromInput: gi, weightHH: whh, biasHH: bhh, states: out,
                                       rows: reversed ? Array(sequence.reversed()) : Array(sequence), hiddenSize: hiddenSize)
                        }
                    }
                }
            }
        }
        return states
    }

    /// One sequence: for each row in `rows` (reading order), `h = step(h)` from h = 0, with state
    /// row `row` of `states` set to the new h.
    private static func recur(gatesFromInput gi: UnsafePointer<Float>, weightHH whh: UnsafePointer<Float>,
                              biasHH bhh: UnsafePointer<Float>, states: UnsafeMutablePointer<Float>,
                              rows: [Int], hiddenSize h: Int) {
        let gh = UnsafeMutablePointer<Float>.allocate(capacity: 3 * h)
        let state = UnsafeMutablePointer<Float>.allocate(capacity: h)
        defer { gh.deallocate(); state.deallocate() }
        state.initialize(repeating: 0, count: h)
        for row in rows {
            // gh = W_hh h + b_hh
            gh.initialize(from: bhh, count: 3 * h)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(3 * h), Int32(h), 1, whh, Int32(h), state, 1, 1, gh, 1)
            step(gi: gi + row * 3 * h, gh: gh, state: state, hiddenSize: h)
            (states + row * h).update(from: state, count: h)
        }
    }

    /// The gate arithmetic of one step: updates `state` (h values) in place from the input's and
    /// the previous state's gate pre-activations (3h values each, r z n).
    @inline(__always)
    static func step(gi: UnsafePointer<Float>, gh: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>,
                     hiddenSize h: Int) {
        for k in 0..<h {
            let r = 1 / (1 + expf(-(gi[k] + gh[k])))
            let z = 1 / (1 + expf(-(gi[h + k] + gh[h + k])))
            let n = tanhf(gi[2 * h + k] + r * gh[2 * h + k])
            state[k] = (1 - z) * n + z * state[k]
        }
    }
}

/// A one-layer bidirectional GRU (`nn.GRU(bidirectional=True)`): the forward and the reverse
/// direction read the same sequence, each from a zero state.
public struct BidirectionalGRU: Sendable {
    /// The `_l0` weights.
    public let forward: GRUDirection
    /// The `_l0_reverse` weights.
    public let backward: GRUDirection

    /// Checks that both directions agree on input and hidden widths.
    public init(forward: GRUDirection, backward: GRUDirection) throws(InferenceError) {
        guard forward.inputSize == backward.inputSize, forward.hiddenSize == backward.hiddenSize else {
            throw .shapeMismatch(expected: [forward.hiddenSize, forward.inputSize],
                                 found: [backward.hiddenSize, backward.inputSize], context: "reverse GRU direction")
        }
        self.forward = forward
        self.backward = backward
    }

    /// Both directions' states over the sequences of `x` (see `GRUDirection.run`): `[rows, h]` each.
    /// PyTorch's output is the two side by side.
    public func callAsFunction(_ x: Tensor, sequences: [Range<Int>]) throws(InferenceError) -> (forward: Tensor, backward: Tensor) {
        (try forward.run(x, sequences: sequences, reversed: false),
         try backward.run(x, sequences: sequences, reversed: true))
    }
}
