/// Prometheus metrics, health and readiness for postclassd.
public enum PostclassMetrics {}
