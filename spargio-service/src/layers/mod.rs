//! Runtime-native tower layers (filled in by the layers work).
