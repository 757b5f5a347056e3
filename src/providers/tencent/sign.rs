//! Tencent request signing (placeholder).
