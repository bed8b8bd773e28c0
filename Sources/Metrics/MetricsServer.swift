import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// A small HTTP/1.1 server for `GET /metrics`, `/healthz` and `/readyz`.
///
/// Ownership: ``start(address:registry:health:group:idleTimeout:logger:)`` either uses the
/// `EventLoopGroup` it is given (and leaves it running on shutdown) or creates a one-thread
/// group of its own, which ``shutdown()`` then shuts down. One thread is plenty: a scrape
/// renders the registry under a lock and writes a few kilobytes.
public final class MetricsServer: Sendable {
    /// The address that was asked for.
    public let requestedAddress: MetricsAddress
    /// The address actually bound; its port is the kernel's pick when port 0 was asked for.
    public let boundAddress: MetricsAddress

    private let channel: any Channel
    private let connections: ConnectionSet
    private let ownedGroup: MultiThreadedEventLoopGroup?
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)

    /// The bound TCP port (useful with port 0).
    public var port: Int { boundAddress.port }

    private init(requested: MetricsAddress, bound: MetricsAddress, channel: any Channel,
                 connections: ConnectionSet, ownedGroup: MultiThreadedEventLoopGroup?, logger: Logger) {
        self.requestedAddress = requested
        self.boundAddress = bound
        self.channel = channel
        self.connections = connections
        self.ownedGroup = ownedGroup
        self.logger = logger
    }

    /// Binds `address` and starts serving.
    ///
    /// - Parameters:
    ///   - registry: rendered on `GET /metrics` (``DaemonMetrics/registry``).
    ///   - health: answers `/healthz` and `/readyz`.
    ///   - group: an event loop group to run on; `nil` creates one owned by the server.
    ///   - idleTimeout: a connection that sends nothing for this long is closed.
    ///   - maxConnections: connections open at once, at most; more are closed as they arrive, so
    ///     clients that open sockets and hold them cannot exhaust the daemon's file descriptors.
    /// - Throws: ``MetricsServerError`` saying why the address could not be bound.
    public static func start(
        address: MetricsAddress,
        registry: PrometheusCollectorRegistry,
        health: HealthState,
        group: (any EventLoopGroup)? = nil,
        idleTimeout: TimeAmount = .seconds(120),
        maxConnections: Int = 64,
        logger: Logger = Logger(label: "postclassd.metrics")
    ) async throws(MetricsServerError) -> MetricsServer {
        let ownedGroup: MultiThreadedEventLoopGroup?
        let loopGroup: any EventLoopGroup
        if let group {
            ownedGroup = nil
            loopGroup = group
        } else {
            let created = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            ownedGroup = created
            loopGroup = created
        }
        let router = HTTPRouter(registry: registry, health: health)
        let connections = ConnectionSet(limit: maxConnections, logger: logger)

        let bootstrap = ServerBootstrap(group: loopGroup)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // A failed initializer closes the connection.
                guard connections.insert(channel) else { return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState) }
                return channel.eventLoop.makeCompletedFuture {
                    // Idle connections are closed so clients that open sockets and go quiet cannot
                    // pile up; a scraper on keep-alive talks at least every scrape interval.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(router: router))
                }
            }
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)

        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            try? await ownedGroup?.shutdownGracefully()
            throw MetricsServerError(binding: address, error: error)
        }

        let boundPort = channel.localAddress?.port ?? address.port
        let bound = MetricsAddress(host: address.host, port: boundPort)
        logger.info("metrics server listening", metadata: [
            "address": "\(bound)", "endpoints": "/metrics /healthz /readyz",
        ])
        return MetricsServer(requested: address, bound: bound, channel: channel,
                             connections: connections, ownedGroup: ownedGroup, logger: logger)
    }

    /// Binds `address` and serves `metrics` and `health`; see
    /// ``start(address:registry:health:group:idleTimeout:logger:)``.
    public static func start(
        address: MetricsAddress,
        metrics: DaemonMetrics,
        health: HealthState,
        group: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "postclassd.metrics")
    ) async throws(MetricsServerError) -> MetricsServer {
        try await start(address: address, registry: metrics.registry, health: health, group: group, logger: logger)
    }

    /// Closes the listening socket and open connections (a keep-alive scraper would otherwise
    /// hold one) and, if the server created its event loop group, shuts the group down.
    /// Safe to call more than once.
    public func shutdown() async throws(MetricsServerError) {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        do {
            try await channel.close()
        } catch ChannelError.alreadyClosed {
            // Closed from elsewhere (e.g. the group went down first): nothing left to do.
        } catch {
            throw .shutdownFailed(reason: "\(error)")
        }
        await connections.closeAll()
        do {
            try await ownedGroup?.shutdownGracefully()
        } catch {
            throw .shutdownFailed(reason: "\(error)")
        }
        logger.debug("metrics server stopped", metadata: ["address": "\(boundAddress)"])
    }
}

/// The accepted connections, so shutdown can close them when the event loop group is not ours,
/// and so their number stays within a limit.
final class ConnectionSet: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var refused = 0
        var lastWarning: ContinuousClock.Instant?
    }

    private let limit: Int
    private let logger: Logger
    private let state = Mutex(State())

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Adds a connection; returns false, adding nothing, when the limit is reached (warning at
    /// most once a minute with how many were refused).
    func insert(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let now = ContinuousClock.now
        let (admitted, warnRefused) = state.withLock { s -> (Bool, Int?) in
            guard s.channels.count < limit else {
                s.refused += 1
                guard s.lastWarning.map({ now - $0 >= .seconds(60) }) ?? true else { return (false, nil) }
                s.lastWarning = now
                defer { s.refused = 0 }
                return (false, s.refused)
            }
            s.channels[key] = channel
            return (true, nil)
        }
        if let warnRefused {
            logger.warning("metrics server at its connection limit: new connections closed (idle ones close after the idle timeout)",
                           metadata: ["limit": "\(limit)", "refused": "\(warnRefused)"])
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { _ = $0.channels.removeValue(forKey: key) }
        }
        return true
    }

    func closeAll() async {
        let open = state.withLock { $0.channels.values }
        for channel in open {
            try? await channel.close()  // already closed by the peer: nothing to do
        }
    }
}

/// Why the metrics server could not start or stop; messages say what to do.
public enum MetricsServerError: Error, CustomStringConvertible {
    /// Another process (or another postclassd) listens on the port.
    case addressInUse(MetricsAddress)
    /// The port needs privileges the daemon does not have (below 1024 under DynamicUser).
    case permissionDenied(MetricsAddress)
    /// The host is not an address of this machine.
    case addressNotAvailable(MetricsAddress)
    /// The host name does not resolve.
    case unresolvableHost(MetricsAddress)
    /// Any other bind failure, with the system's reason.
    case bindFailed(MetricsAddress, reason: String)
    /// Closing the socket or the event loop group failed.
    case shutdownFailed(reason: String)

    init(binding address: MetricsAddress, error: any Error) {
        switch error {
        case let error as IOError where error.errnoCode == EADDRINUSE:
            self = .addressInUse(address)
        case let error as IOError where error.errnoCode == EACCES:
            self = .permissionDenied(address)
        case let error as IOError where error.errnoCode == EADDRNOTAVAIL:
            self = .addressNotAvailable(address)
        case is SocketAddressError:
            self = .unresolvableHost(address)
        default:
            self = .bindFailed(address, reason: "\(error)")
        }
    }

    /// The message to log: what failed and which setting to change.
    public var description: String {
        switch self {
        case .addressInUse(let address):
            "cannot bind metrics address \(address): address in use; set --metrics-address to a free port"
        case .permissionDenied(let address):
            "cannot bind metrics address \(address): permission denied (ports below 1024 need privileges); "
                + "set --metrics-address to a port of 1024 or above"
        case .addressNotAvailable(let address):
            "cannot bind metrics address \(address): no local interface has that address; "
                + "set --metrics-address to 127.0.0.1:PORT, 0.0.0.0:PORT or one of this host's addresses"
        case .unresolvableHost(let address):
            "cannot bind metrics address \(address): host '\(address.host)' does not resolve; "
                + "set --metrics-address to an IP address such as 127.0.0.1:9464"
        case .bindFailed(let address, let reason):
            "cannot bind metrics address \(address): \(reason); set --metrics-address to another host:port"
        case .shutdownFailed(let reason):
            "metrics server did not shut down cleanly: \(reason)"
        }
    }
}

/// Reads one HTTP request at a time and answers it through ``HTTPRouter``; keeps the
/// connection open when the client asked for keep-alive (Prometheus does).
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: HTTPRouter
    private var request: HTTPRequestHead?

    init(router: HTTPRouter) {
        self.router = router
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break  // No endpoint takes a body; it is read and discarded.
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let reply = router.reply(method: head.method.rawValue, target: head.uri)
        let keepAlive = head.isKeepAlive

        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: String(reply.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in reply.extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }

        let status = HTTPResponseStatus(statusCode: reply.status, reasonPhrase: reply.reason)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status,
                                                             headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: reply.body.count)
        buffer.writeBytes(reply.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)

        let flushed = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            flushed.whenComplete { _ in boundContext.value.close(promise: nil) }
        }
    }
}
