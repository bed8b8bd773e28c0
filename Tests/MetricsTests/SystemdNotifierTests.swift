import Foundation
import XCTest
@testable import PostclassMetrics

final class SystemdNotifierTests: XCTestCase {
    func testReadyWatchdogStoppingArriveInOrder() throws {
        let receiver = try DatagramReceiver(directory: temporaryDirectory(self))
        let notifier = SystemdNotifier(socketPath: receiver.notifySocket)
        XCTAssertTrue(notifier.isEnabled)

        try notifier.extendTimeout(microseconds: 90_000_000)
        try notifier.ready(status: "consuming posts\nfrom 3 partitions")
        try notifier.watchdog()
        try notifier.status("draining")
        try notifier.stopping()

        XCTAssertEqual(receiver.drain(), [
            "EXTEND_TIMEOUT_USEC=90000000",
            "READY=1\nSTATUS=consuming posts from 3 partitions",
            "WATCHDOG=1",
            "STATUS=draining",
            "STOPPING=1",
        ])
    }

    func testAbstractSocketFromEnvironment() throws {
        let receiver = try DatagramReceiver(directory: nil)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket])
        try notifier.ready()
        XCTAssertEqual(receiver.receive(timeout: 2), "READY=1")
    }

    func testWithoutNotifySocketEverythingIsANoOp() throws {
        let notifier = SystemdNotifier(environment: [:])
        XCTAssertFalse(notifier.isEnabled)
        XCTAssertNil(notifier.watchdogInterval)
        try notifier.ready()
        try notifier.stopping()
        XCTAssertEqual(Watchdog(notifier: notifier).loopAlive(), .disabled)
    }

    func testWatchdogIntervalHonoursWatchdogPid() {
        let ours = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000",
                                                 "WATCHDOG_PID": String(getpid())])
        XCTAssertEqual(ours.watchdogInterval, .seconds(30))
        let unset = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"])
        XCTAssertEqual(unset.watchdogInterval, .seconds(30))
        let theirs = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000",
                                                   "WATCHDOG_PID": "1"], pid: 4242)
        XCTAssertNil(theirs.watchdogInterval)
        let garbage = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"])
        XCTAssertNil(garbage.watchdogInterval)
    }

    func testSendErrorsAreTypedAndActionable() {
        XCTAssertThrowsError(try SystemdNotifier(socketPath: "relative.sock").ready()) { error in
            XCTAssertEqual(error as? SystemdNotifyError, .invalidSocketPath("relative.sock"))
        }
        XCTAssertThrowsError(try SystemdNotifier(socketPath: "/nonexistent/notify.sock").ready()) { error in
            guard case .sendFailed = error as? SystemdNotifyError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("cannot notify systemd at /nonexistent/notify.sock"), "\(error)")
        }
        let long = "/" + String(repeating: "a", count: 200)
        XCTAssertThrowsError(try SystemdNotifier(socketPath: long).ready()) { error in
            guard case .socketPathTooLong = error as? SystemdNotifyError else { return XCTFail("\(error)") }
        }
    }

    /// The sequence: READY=1, periodic WATCHDOG=1 while the loop runs, none while it
    /// stalls, then STOPPING=1.
    func testWatchdogPingsOnlyWhileTheLoopIsAlive() async throws {
        let receiver = try DatagramReceiver(directory: temporaryDirectory(self))
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket,
                                                     "WATCHDOG_USEC": "200000"])
        XCTAssertEqual(notifier.watchdogInterval, .milliseconds(200))
        let watchdog = Watchdog(notifier: notifier)
        try notifier.ready()

        // A live loop: iterations every 10 ms for 0.6 s, so pings are due every 100 ms.
        var sent = 0
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .milliseconds(600) {
            if watchdog.loopAlive() == .sent { sent += 1 }
            try await Task.sleep(for: .milliseconds(10))
        }
        // About 6; the lower bound is loose because a loaded machine may delay the loop's sleeps.
        XCTAssertTrue((2...7).contains(sent), "expected about 6 pings in 0.6 s at 100 ms, got \(sent)")

        let whileAlive = receiver.drain()
        XCTAssertEqual(whileAlive.first, "READY=1")
        XCTAssertEqual(Array(whileAlive.dropFirst()), Array(repeating: "WATCHDOG=1", count: sent))

        // A stalled loop: no loopAlive() calls, so nothing may arrive, however long we wait.
        XCTAssertNil(receiver.receive(timeout: 0.5), "a stalled loop must not ping")

        try notifier.stopping()
        XCTAssertEqual(receiver.receive(timeout: 2), "STOPPING=1")
    }

    func testWatchdogRateLimitsToHalfTheInterval() throws {
        let receiver = try DatagramReceiver(directory: temporaryDirectory(self))
        let watchdog = Watchdog(notifier: SystemdNotifier(socketPath: receiver.notifySocket),
                                interval: .seconds(10))
        XCTAssertEqual(watchdog.loopAlive(), .sent)
        for _ in 0..<1000 { XCTAssertEqual(watchdog.loopAlive(), .notDue) }
        XCTAssertEqual(receiver.drain(), ["WATCHDOG=1"])
    }
}
