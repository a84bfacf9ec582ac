//! An embedded, in-memory Kubernetes API server.
