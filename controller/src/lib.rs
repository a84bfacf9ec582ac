//! Shared informers, indexed stores and rate-limited work queues.
