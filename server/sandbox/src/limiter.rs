//! Per-store resource limiter: memory summed over all memories of the instance, table sizes.

use wasmtime::ResourceLimiter;

use crate::error::{SandboxError, Violation};

/// Counts the bytes of every memory of the store; refusing growth ends the run with a
/// [`Violation`] (a trap) rather than letting `memory.grow` return -1, so the outcome is exact.
#[derive(Debug)]
pub(crate) struct Limiter {
    max_memory: u64,
    max_table: u32,
    memory_total: u64,
    pub(crate) peak_memory: u64,
    /// Core instances and tables the store may hold: one module's, or one component's.
    instances: usize,
    tables: usize,
}

impl Limiter {
    /// The limiter of a core module's store (one instance).
    pub(crate) fn new(max_memory: u64, max_table: u32) -> Self {
        Self {
            max_memory,
            max_table,
            memory_total: 0,
            peak_memory: 0,
            instances: 1,
            tables: crate::engine::MAX_TABLES_PER_MODULE as usize,
        }
    }

    /// The limiter of a component's store (its core instances; memories are capped alike).
    pub(crate) fn for_component(max_memory: u64, max_table: u32) -> Self {
        Self {
            instances: crate::engine::MAX_CORE_INSTANCES_PER_COMPONENT as usize,
            tables: crate::engine::MAX_TABLES_PER_COMPONENT as usize,
            ..Self::new(max_memory, max_table)
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_total + desired as u64).saturating_sub(current as u64);
        if total > self.max_memory {
            return Err(wasmtime::Error::new(Violation(SandboxError::MemoryLimit {
                requested_bytes: total,
                limit: self.max_memory,
            })));
        }
        self.memory_total = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > u64::from(self.max_table) {
            return Err(wasmtime::Error::new(Violation(SandboxError::TableLimit {
                requested: desired as u64,
                limit: self.max_table,
            })));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        crate::engine::MAX_MEMORIES_PER_MODULE as usize
    }
}
