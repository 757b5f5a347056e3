//! Alibaba request signing (placeholder).
