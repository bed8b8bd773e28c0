import ArgumentParser

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "broker", abstract: "Run the embedded Kafka broker.")
}
