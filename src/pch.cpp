// Compiled only to build the shared precompiled header (include/spvit/core/pch.h).
