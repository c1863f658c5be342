//! Health and metrics HTTP server (placeholder; being written).
