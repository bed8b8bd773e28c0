/// EfficientNet-Lite's inverted-residual block (MBConv without squeeze-excite) over channels-last
/// maps `[B, H, W, C]`: 1x1 expand + ReLU6 (absent when the expand ratio is 1), depthwise k x k +
/// ReLU6, 1x1 project, plus the block's input when `residual`.
public struct MBConv: Sendable {
    public let expand: PointwiseConv?
    public let depthwise: DepthwiseConv
    public let project: PointwiseConv
    /// Whether the block adds its input to its output (stride 1, as many channels out as in).
    public let residual: Bool

    /// Checks that the three convs chain: expand's outputs (or the block's inputs) are the
    /// depthwise channels, which are project's inputs; a residual block keeps its shape.
    public init(expand: PointwiseConv?, depthwise: DepthwiseConv, project: PointwiseConv, residual: Bool) throws(InferenceError) {
        let hidden = depthwise.channels
        guard (expand?.outChannels ?? hidden) == hidden, project.inChannels == hidden else {
            throw .shapeMismatch(expected: [hidden, hidden], found: [expand?.outChannels ?? hidden, project.inChannels],
                                 context: "MBConv: expand outputs and project inputs must equal the depthwise channels")
        }
        let inChannels = expand?.inChannels ?? hidden
        guard !residual || (depthwise.stride == 1 && project.outChannels == inChannels) else {
            throw .shapeMismatch(expected: [inChannels], found: [project.outChannels], context: "MBConv residual (needs stride 1)")
        }
        self.expand = expand
        self.depthwise = depthwise
        self.project = project
        self.residual = residual
    }

    public var inChannels: Int { expand?.inChannels ?? depthwise.channels }
    public var outChannels: Int { project.outChannels }

    /// Layer by layer over the whole batch: each conv is one pass (one sgemm) over all B images.
    public func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        var hidden = x
        if let expand { hidden = try expand(hidden) }
        hidden = try depthwise(hidden)
        return try project(hidden, adding: residual ? x : nil)
    }
}
