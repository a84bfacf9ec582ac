//! The kubewasm host: plugin runtime, controller wiring and the command line.
