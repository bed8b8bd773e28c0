import Foundation
import TestSupport
import Kafka
import Testing

/// Several daemons in one consumer group: Kafka spreads the partitions, and takes them over when
/// one goes.
@Suite(.serialized) struct GroupTests {
    @Test("two daemons share a 3-partition topic; killing one hands its partitions to the other with nothing lost")
    func twoDaemonsShareAndTakeOver() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let total = 3000
        try cluster.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        // A short session timeout so the group notices the killed member quickly.
        let args = ["--model", "slow:2", "--batch-size", "8", "--group-id", "shared", "--kafka", "session.timeout.ms=6000"]
        let a = try DaemonProcess(brokers: cluster.bootstrap, arguments: args)
        let b = try DaemonProcess(brokers: cluster.bootstrap, arguments: args)
        #expect(a.waitForLog("partitions assigned", timeout: .seconds(30)))
        #expect(b.waitForLog("partitions assigned", timeout: .seconds(30)))
        // Both hold partitions at the same time before one is killed.
        let sharedAt = ContinuousClock.now
        var shared = false
        while ContinuousClock.now - sharedAt < .seconds(20) && !shared {
            shared = ownedPartitions(a.log) > 0 && ownedPartitions(b.log) > 0 && ownedPartitions(a.log) + ownedPartitions(b.log) == 3
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(shared, "the group did not spread partitions:\nA:\n\(a.log.suffix(1500))\nB:\n\(b.log.suffix(1500))")
        a.killHard()
        let output = try cluster.readAll("labels", expected: Int.max, idle: .seconds(20), timeout: .seconds(180))
        #expect(b.stop() == 0)
        let ids = output.compactMap { Posts.id(of: $0.value) }
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(ids)
        #expect(missing.isEmpty, "\(missing.count) ids lost when a group member died")
        print("group test: \(ids.count - Set(ids).count) duplicates of \(total) posts after kill -9 of one member")
    }

    /// Partitions a daemon owns now, from its assignment log lines.
    private func ownedPartitions(_ log: String) -> Int {
        var owned = Set<String>()
        for line in log.split(separator: "\n") {
            guard let range = line.range(of: "partitions=") else { continue }
            let list = line[range.upperBound...].prefix { $0 != " " }.split(separator: ",").map(String.init)
            if line.contains("partitions assigned") { owned.formUnion(list) }
            if line.contains("partitions revoked") || line.contains("partitions lost") { owned.subtract(list) }
        }
        return owned.count
    }
}
