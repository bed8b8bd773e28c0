import ArgumentParser
import Foundation
import Kafka
import Logging

/// `postclassd broker`: the embedded Kafka broker as a process of its own, for demos and tests.
struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded Kafka broker (librdkafka's mock cluster) until SIGTERM or SIGINT.",
        discussion: """
            For demos and tests only: it keeps about 5 MB per partition (older messages are trimmed), \
            keeps nothing on disk and has few admin APIs. Point production at a real cluster.
            """
    )

    @Option(help: "Topics to create, as NAME:PARTITIONS, comma-separated.")
    var topics: String = "posts:3,labels:3,posts.dlq:1"

    @Option(help: "How many brokers to run (1 to 16).")
    var brokers: Int = 1

    @Option(name: .customLong("bootstrap-file"), help: "Write the bootstrap address to this file (removed on exit).")
    var bootstrapFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        DaemonLogging.bootstrap(level: logLevel)
        let logger = Logger(label: "postclassd.broker")
        let specs: [TopicSpec]
        do {
            specs = try TopicSpec.parseList(topics)
        } catch {
            throw ValidationError("--topics: \(error.message)")
        }
        let broker = try EmbeddedBroker(brokers: brokers, topics: specs, logger: logger)
        defer { broker.close() }

        if let bootstrapFile {
            do {
                try broker.bootstrapServers.write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("--bootstrap-file: cannot write \(bootstrapFile): \(error.localizedDescription)")
            }
        }
        defer { if let bootstrapFile { try? FileManager.default.removeItem(atPath: bootstrapFile) } }

        print(broker.bootstrapServers)
        fflush(nil)  // all streams: stdout may be a pipe
        logger.info("embedded broker up", metadata: [
            "bootstrap": .string(broker.bootstrapServers),
            "topics": .string(specs.map(\.description).joined(separator: ",")),
            "brokers": .stringConvertible(brokers),
        ])
        let signal = ShutdownSignal.wait()
        logger.info("embedded broker stopping", metadata: ["signal": .string(signal)])
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
