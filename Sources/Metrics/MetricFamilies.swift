import Prometheus
import Synchronization

// Label-keyed handle caches over a `PrometheusCollectorRegistry` (classes: each owns its cache's lock).
//
// Why a cache in front of the registry: the registry validates the metric name and every
// label on each `make*` call; the daemon records per message, so it keeps the handle for each
// label-value tuple and pays one dictionary lookup instead. The label names are fixed per
// family, so callers pass only values, in the family's label order.

/// Counters sharing a name and label names, one per label-value tuple.
final class CounterFamily: Sendable {
    let registry: PrometheusCollectorRegistry
    let name: String
    let help: String
    let labelNames: [String]
    private let handles = Mutex<[[String]: Counter]>([:])

    init(_ registry: PrometheusCollectorRegistry, name: String, help: String, labels: [String]) {
        self.registry = registry
        self.name = name
        self.help = help
        self.labelNames = labels
    }

    func callAsFunction(_ values: String...) -> Counter {
        handles.withLock { cache in
            if let counter = cache[values] { return counter }
            let counter = registry.makeCounter(descriptor: descriptor(name, help), labels: pairs(labelNames, values))
            cache[values] = counter
            return counter
        }
    }
}

/// Gauges sharing a name and label names; series can be removed (e.g. lag of a revoked partition).
final class GaugeFamily: Sendable {
    let registry: PrometheusCollectorRegistry
    let name: String
    let help: String
    let labelNames: [String]
    private let handles = Mutex<[[String]: Gauge]>([:])

    init(_ registry: PrometheusCollectorRegistry, name: String, help: String, labels: [String]) {
        self.registry = registry
        self.name = name
        self.help = help
        self.labelNames = labels
    }

    func callAsFunction(_ values: [String]) -> Gauge {
        handles.withLock { cache in
            if let gauge = cache[values] { return gauge }
            let gauge = registry.makeGauge(descriptor: descriptor(name, help), labels: pairs(labelNames, values))
            cache[values] = gauge
            return gauge
        }
    }

    /// Unregisters the series whose label values match `shouldRemove`, so they vanish from the
    /// scrape instead of freezing at their last value.
    func removeAll(where shouldRemove: ([String]) -> Bool) {
        // Unregistering under our lock: otherwise a concurrent `callAsFunction` for the same
        // labels could fetch the still-registered gauge, cache it, and then lose it to the
        // unregister, leaving a cached gauge that no scrape shows. The registry never calls
        // back into this type, so the nested locks cannot deadlock.
        handles.withLock { cache in
            for (key, gauge) in cache where shouldRemove(key) {
                cache.removeValue(forKey: key)
                registry.unregisterGauge(gauge)
            }
        }
    }
}

/// Value histograms sharing a name, label names and buckets.
final class HistogramFamily: Sendable {
    let registry: PrometheusCollectorRegistry
    let name: String
    let help: String
    let labelNames: [String]
    let buckets: [Double]
    private let handles = Mutex<[[String]: ValueHistogram]>([:])

    init(_ registry: PrometheusCollectorRegistry, name: String, help: String, labels: [String], buckets: [Double]) {
        self.registry = registry
        self.name = name
        self.help = help
        self.labelNames = labels
        self.buckets = buckets
    }

    func callAsFunction(_ values: String...) -> ValueHistogram {
        handles.withLock { cache in
            if let histogram = cache[values] { return histogram }
            let histogram = registry.makeValueHistogram(
                descriptor: descriptor(name, help), labels: pairs(labelNames, values), buckets: buckets)
            cache[values] = histogram
            return histogram
        }
    }
}

private func pairs(_ names: [String], _ values: [String]) -> [(String, String)] {
    // A programming error here would silently shift labels; the families are private to
    // DaemonMetrics and always called with the right arity, so this is checked in debug only.
    assert(names.count == values.count, "label arity mismatch: \(names) vs \(values)")
    return Array(zip(names, values))
}

/// A descriptor carrying the full metric name (already suffixed by unit) and its help text.
func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
