//! Tencent JSON wire types (placeholder).
