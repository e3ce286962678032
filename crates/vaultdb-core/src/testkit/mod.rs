//! Backend conformance suite and fault-injection wrappers (placeholder).
