//! Alibaba JSON wire types (placeholder).
