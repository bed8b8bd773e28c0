import Foundation

/// The outputs of one EfficientNet-Lite forward pass over a batch of B images.
public struct EfficientNetOutput: Sendable {
    /// `[B, h * w, C]`: the head's feature map after BatchNorm and ReLU6, one vector per cell,
    /// cells in row-major order (y, then x).
    public let regions: Tensor
    /// `[B, C]`: the global average of the regions.
    public let pooled: Tensor
    /// `[B, classes]` where the checkpoint has a classifier.
    public let logits: Tensor?
    /// When requested: the stem's output, every block's output and the head's output, each
    /// channels-last `[B, h, w, C]`.
    public let stages: [Tensor]
}

/// EfficientNet-Lite (`efficientnet_lite` kind): a stride-2 stem conv, MBConv blocks without
/// squeeze-excite (1x1 expand, depthwise k x k, 1x1 project, residual when shapes allow), a 1x1
/// head conv, global average pooling and a linear classifier; BatchNorm after every conv, ReLU6
/// after all but the project convs.
///
/// BatchNorm is folded into the convs at load. Feature maps are channels-last (`[B, H, W, C]`):
/// 1x1 convs are then one matrix product over all pixels of the batch, the depthwise kernel is SIMD
/// across channels, and the head's output already is the `[B, 49, C]` region layout the heads read.
///
/// In bf16 (`Precision`), the 1x1 convs with at least `bf16MinimumInputs` inputs for their role
/// (expand, project, head) run bf16 products; the stem, the depthwise convs, the narrower 1x1
/// convs and the classifier stay fp32.
public struct EfficientNetLite: ImageEncoder {
    /// The checkpoint's configuration.
    public let config: EfficientNetConfig
    public let classNames: [String]?
    let stem: Conv2D
    let blocks: [MBConv]
    let head: PointwiseConv
    let classifier: Linear?

    public var preprocess: ImagePreprocessConfig { config.preprocess }
    public var regionWidth: Int { head.outChannels }
    /// The number of MBConv blocks.
    public var blockCount: Int { blocks.count }

    /// Loads `config.json`, `model.safetensors` and the class names file from a converted model
    /// folder, with the 1x1 convs' products in `precision` (see `bf16MinimumInputs`).
    public init(directory: URL, precision: Precision = .fp32) throws(ModelLoadError) {
        let checkpoint = try Checkpoint<EfficientNetConfig>(directory: directory)
        var names: [String]?
        if let file = checkpoint.config.classNamesFile {
            let url = directory.appendingPathComponent(file)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw .missingFile(path: url.path, hint: "config.json names it as class_names_file")
            }
            names = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if names?.last == "" { names?.removeLast() }
        }
        try self.init(weights: checkpoint.weights, config: checkpoint.config, classNames: names, precision: precision)
    }

    /// Builds the encoder from opened weights, checking the config against the weight shapes.
    public init(weights file: SafeTensorsFile, config: EfficientNetConfig, classNames: [String]?,
                precision: Precision = .fp32) throws(ModelLoadError) {
        guard config.activation == "relu6" else {
            throw .inconsistent(detail: "activation '\(config.activation)' is not supported (EfficientNet-Lite uses relu6)")
        }
        do { try config.preprocess.validate() } catch { throw .inconsistent(detail: error.description) }
        guard config.preprocess.width == config.imageSize, config.preprocess.height == config.imageSize,
              config.stem.inputSize == config.imageSize else {
            // The padding in config.json is static, computed for image_size; another size would shift every window.
            throw .inconsistent(detail: "preprocess size \(config.preprocess.width)x\(config.preprocess.height) and stem input_size \(config.stem.inputSize) must equal image_size \(config.imageSize)")
        }
        let vb = WeightReader(file: file), eps = config.batchNormEpsilon
        do {
            let stem = try vb.foldedConv(config.stem.weight, norm: config.stem.batchNorm, shape: [-1, -1, -1, -1], eps: eps)
            self.stem = try Conv2D(weight: stem.weight, bias: stem.bias, stride: config.stem.stride,
                                   padding: config.stem.padding, relu6: true)
            var channels = self.stem.outChannels
            var blocks: [MBConv] = []
            for (position, b) in config.blocks.enumerated() {
                guard b.index == position else { throw ModelLoadError.inconsistent(detail: "config.json lists block \(b.index) at position \(position)") }
                let block = vb.pp("_blocks.\(b.index)")
                guard block.contains("_expand_conv.weight") == b.hasExpandConv else {
                    throw ModelLoadError.inconsistent(detail: "config.json says block \(b.index) has_expand_conv \(b.hasExpandConv); \(file.path) disagrees")
                }
                var expand: PointwiseConv?
                if b.hasExpandConv {
                    let e = try block.foldedConv("_expand_conv.weight", norm: "_bn0", shape: [-1, channels, 1, 1], eps: eps)
                    expand = try PointwiseConv(weight: e.weight, bias: e.bias, relu6: true,
                                               precision: Self.precision(precision, inputs: channels, role: .expand))
                }
                let hidden = expand?.outChannels ?? channels
                let d = try block.foldedConv("_depthwise_conv.weight", norm: "_bn1", shape: [hidden, 1, -1, -1], eps: eps)
                let pr = try block.foldedConv("_project_conv.weight", norm: "_bn2", shape: [-1, hidden, 1, 1], eps: eps)
                let project = try PointwiseConv(weight: pr.weight, bias: pr.bias, relu6: false,
                                                precision: Self.precision(precision, inputs: hidden, role: .project))
                guard !b.residual || (b.stride == 1 && project.outChannels == channels) else {
                    throw ModelLoadError.inconsistent(detail: "block \(b.index) is marked residual but maps \(channels) channels to \(project.outChannels) with stride \(b.stride)")
                }
                blocks.append(try MBConv(expand: expand,
                                         depthwise: try DepthwiseConv(weight: d.weight, bias: d.bias, stride: b.stride,
                                                                      padding: b.padding, relu6: true),
                                         project: project, residual: b.residual))
                channels = project.outChannels
            }
            guard !vb.contains("_blocks.\(blocks.count)._depthwise_conv.weight") else {
                throw ModelLoadError.inconsistent(detail: "\(file.path) has more blocks than the \(blocks.count) in config.json")
            }
            self.blocks = blocks
            let h = try vb.foldedConv(config.head.weight, norm: config.head.batchNorm, shape: [-1, channels, 1, 1], eps: eps)
            head = try PointwiseConv(weight: h.weight, bias: h.bias, relu6: true,
                                     precision: Self.precision(precision, inputs: channels, role: .head))
            if let c = config.classifier {
                let weight = try vb.tensor(c.weight, shape: [-1, head.outChannels])
                // Packed once: sgemm would pack the 1000 x 1280 weight again on every call, which
                // for a batch of a few images costs more than the product.
                classifier = try Linear(weight: weight, bias: try vb.vector(c.bias, count: weight.shape[0])).packedForShortInputs()
            } else {
                classifier = nil
            }
        } catch {
            throw .loading(error, file: file.path)
        }
        if let classNames, let classifier, classNames.count != classifier.outFeatures {
            throw .inconsistent(detail: "\(classNames.count) class names for \(classifier.outFeatures) classes")
        }
        self.classNames = classifier == nil ? nil : classNames
        self.config = config
    }

    /// Where a 1x1 conv sits in a network.
    enum PointwiseRole: String, Sendable { case expand, project, head }

    /// The fewest inputs at which a 1x1 conv in each role takes bf16 products when the encoder runs
    /// in bf16.
    ///
    /// Expand and head: 32, one bf16 tile row of AMX; a narrower conv is padded to it (half the
    /// work wasted at 16 inputs, where bf16 ran at 0.7x fp32's speed; bench/kernels/README.md).
    /// Project: 240, blocks 4 and later. The project convs are linear and write the residual
    /// stream; their error comes from rounding the weights (numpy trial in bench/image/README.md),
    /// and in the early blocks (32 to 144 inputs, 16 to 40 outputs, a fifth of the project convs'
    /// work) it failed `BF16ImageAccuracyTests`' guard on ImageNet classes, which the later ones pass.
    static let bf16MinimumInputs: [PointwiseRole: Int] = [.expand: 32, .project: 240, .head: 32]

    /// The precision of a 1x1 conv with `inputs` inputs in `role`, in an encoder run at `precision`.
    static func precision(_ precision: Precision, inputs: Int, role: PointwiseRole) -> Precision {
        guard let minimum = bf16MinimumInputs[role], inputs >= minimum else { return .fp32 }
        return precision
    }

    /// The precision of every 1x1 conv, in network order (each block's expand, if any, and
    /// project; then the head).
    public var pointwisePrecisions: [Precision] {
        blocks.flatMap { [$0.expand?.precision, $0.project.precision].compactMap { $0 } } + [head.precision]
    }

    /// Blocks whose input map has at least this many cells per image run image by image; the
    /// smaller (7 x 7) ones and the head run on the whole batch. One image's maps stay in cache
    /// where a batch's would not (16 images at 112 x 112 x 96 are 77 MB), and that matters more
    /// than taller products. Tuned with bench/image/efficientnet.sh at batch 16 (figures in
    /// bench/image/README.md).
    static let imageByImageCells = 14 * 14

    /// Runs the network on B images, each `preprocess.valuesPerImage` values in `preprocess.layout`.
    /// - Parameter keepStages: also return the stem's, every block's and the head's output.
    public func forward(_ pixels: [Float], batch: Int, keepStages: Bool = false) throws(InferenceError) -> EfficientNetOutput {
        let size = config.imageSize
        guard batch >= 0, pixels.count == batch * 3 * size * size else {
            throw .shapeMismatch(expected: [batch, 3 * size * size], found: [pixels.count], context: "EfficientNet input")
        }
        let input = channelsLast(pixels, batch: batch)
        // The stem and the large early blocks, image by image (one group for a batch of one).
        let groups = batch > 1 ? (0..<batch).map { input.images($0..<($0 + 1)) } : [input]
        var outputs: [Tensor] = [], groupStages: [[Tensor]] = []
        var early = 0
        for group in groups {
            var x = try stem(group)
            var stages = keepStages ? [x] : []
            early = 0
            while early < blocks.count, x.shape[1] * x.shape[2] >= Self.imageByImageCells {
                // One image: fused, row band by row band (MBConv.fusedImage).
                x = try x.shape[0] == 1 ? blocks[early].fusedImage(x) : blocks[early](x)
                if keepStages { stages.append(x) }
                early += 1
            }
            outputs.append(x)
            groupStages.append(stages)
        }
        var x = Tensor(stacking: outputs)
        var stages = (0..<(groupStages.first?.count ?? 0)).map { i in Tensor(stacking: groupStages.map { $0[i] }) }
        // The rest on the whole batch.
        for block in blocks[early...] {
            x = try block(x)
            if keepStages { stages.append(x) }
        }
        let features = try head(x)
        if keepStages { stages.append(features) }
        let cells = features.shape[1] * features.shape[2], width = features.shape[3]
        let regions = try features.reshaped([batch, cells, width])
        let pooled = try Pooling.maskedMean(regions, lengths: [Int](repeating: cells, count: batch), paddedLength: cells)
        return EfficientNetOutput(regions: regions, pooled: pooled, logits: try classifier?(pooled), stages: stages)
    }

    public func encode(_ pixels: [Float], batch: Int) throws(InferenceError) -> ImageEncoding {
        let out = try forward(pixels, batch: batch)
        return ImageEncoding(regions: out.regions, pooled: out.pooled, logits: out.logits)
    }

    /// The input as `[B, H, W, 3]`, transposed from NCHW when the preprocessing writes that layout.
    func channelsLast(_ pixels: [Float], batch: Int) -> Tensor {
        let size = config.imageSize, plane = size * size
        let shape = [batch, size, size, 3]
        guard preprocess.layout == .nchw else { return Tensor(uncheckedShape: shape, data: pixels) }
        let values = [Float](unsafeUninitializedCapacity: pixels.count) { out, initialized in
            pixels.withUnsafeBufferPointer { p in
                guard let src = p.baseAddress, let dst = out.baseAddress else { return }
                for b in 0..<batch {
                    let from = src + b * 3 * plane, to = dst + b * 3 * plane
                    for i in 0..<plane {
                        to[3 * i] = from[i]
                        to[3 * i + 1] = from[plane + i]
                        to[3 * i + 2] = from[2 * plane + i]
                    }
                }
            }
            initialized = pixels.count
        }
        return Tensor(uncheckedShape: shape, data: values)
    }
}

extension WeightReader {
    /// Conv weight `name` of `shape` with the BatchNorm `norm` that follows it folded in
    /// (`norm.{weight,bias,running_mean,running_var}`).
    func foldedConv(_ name: String, norm: String, shape: [Int], eps: Double) throws -> (weight: Tensor, bias: [Float]) {
        let weight = try tensor(name, shape: shape)
        let n = weight.shape[0]
        let bn = try BatchNorm(gamma: try vector(norm + ".weight", count: n), beta: try vector(norm + ".bias", count: n),
                               mean: try vector(norm + ".running_mean", count: n),
                               variance: try vector(norm + ".running_var", count: n), eps: eps)
        return try bn.fold(into: weight)
    }
}
