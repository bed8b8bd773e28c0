import XCTest
@testable import PostclassMetrics

final class MetricsAddressTests: XCTestCase {
    func testParsesAcceptedForms() throws {
        XCTAssertEqual(try MetricsAddress(parsing: "127.0.0.1:9464"), MetricsAddress(host: "127.0.0.1", port: 9464))
        XCTAssertEqual(try MetricsAddress(parsing: "[::1]:9464"), MetricsAddress(host: "::1", port: 9464))
        XCTAssertEqual(try MetricsAddress(parsing: "0.0.0.0:0"), MetricsAddress(host: "0.0.0.0", port: 0))
        XCTAssertEqual(try MetricsAddress(parsing: " localhost:80 "), MetricsAddress(host: "localhost", port: 80))
        XCTAssertEqual(MetricsAddress.default.description, "127.0.0.1:9464")
        XCTAssertEqual(try MetricsAddress(parsing: "[::]:9464").description, "[::]:9464")
    }

    func testRejectsWithMessagesThatSayWhatToDo() {
        let cases: [(String, MetricsAddressError)] = [
            ("", .empty),
            ("127.0.0.1", .missingPort("127.0.0.1")),
            (":9464", .missingHost(":9464")),
            ("127.0.0.1:http", .badPort("127.0.0.1:http", "http")),
            ("127.0.0.1:70000", .badPort("127.0.0.1:70000", "70000")),
            ("::1:9464", .unbracketedIPv6("::1:9464")),
            ("[::1:9464", .unclosedBracket("[::1:9464")),
            ("[::1]9464", .missingPort("[::1]9464")),
        ]
        for (input, expected) in cases {
            XCTAssertThrowsError(try MetricsAddress(parsing: input), input) { error in
                XCTAssertEqual(error as? MetricsAddressError, expected, input)
                XCTAssertTrue("\(error)".hasPrefix("--metrics-address"), "\(error)")
            }
        }
    }
}
