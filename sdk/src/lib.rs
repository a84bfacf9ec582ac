//! The kubewasm plugin SDK.
