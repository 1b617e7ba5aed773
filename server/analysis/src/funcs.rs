//! Function bodies: each is validated and scanned in one pass over its operators. The bodies of
//! a code section are split into contiguous chunks by size and checked on up to
//! [`MAX_THREADS`] threads (`std::thread::scope`); results are merged in function order, and
//! the first error in module order is the one reported.

use wasmparser::{
    CompositeInnerType, FuncToValidate, FuncValidatorAllocations, FunctionBody, ValidatorResources,
    WasmModuleResources,
};

use crate::InvalidModule;
use crate::body::{BodyFact, BodyScan};
use crate::tee::Tee;

/// Upper bound on threads used for one code section.
pub const MAX_THREADS: usize = 4;
/// Below this many body bytes per thread, threads cost more than they save.
const MIN_BYTES_PER_THREAD: usize = 256 * 1024;

pub type Pending<'a> = (FuncToValidate<ValidatorResources>, FunctionBody<'a>);

/// What one body yielded.
pub struct Outcome {
    pub index: u32,
    pub empty: bool,
    pub grows_in_loop: bool,
    pub facts: Vec<BodyFact>,
}

#[derive(Default)]
struct Worker {
    scan: BodyScan,
    allocs: FuncValidatorAllocations,
}

impl Worker {
    fn check(
        &mut self,
        func: FuncToValidate<ValidatorResources>,
        body: &FunctionBody<'_>,
    ) -> Result<Outcome, InvalidModule> {
        let index = func.index;
        let params = match func
            .resources
            .sub_type_at(func.ty)
            .map(|t| &t.composite_type.inner)
        {
            Some(CompositeInnerType::Func(f)) => u32::try_from(f.params().len()).unwrap_or(0),
            _ => 0,
        };
        let mut fv = func.into_validator(std::mem::take(&mut self.allocs));
        let mut reader = body.get_binary_reader();
        fv.read_locals(&mut reader)?;
        reader.set_features(*fv.features());
        self.scan.reset(index, params, reader.original_position());
        while !reader.eof() {
            let offset = reader.original_position();
            let mut tee = Tee {
                inner: fv.visitor(offset),
                scan: &mut self.scan,
                offset,
            };
            reader.visit_operator(&mut tee)??;
        }
        reader.finish_expression(&fv.visitor(reader.original_position()))?;
        self.allocs = fv.into_allocations();
        self.scan.finish();
        Ok(Outcome {
            index,
            empty: body.as_bytes() == [0x00, 0x0b],
            grows_in_loop: self.scan.grows_in_loop,
            facts: std::mem::take(&mut self.scan.facts),
        })
    }

    fn check_all(&mut self, chunk: Vec<Pending<'_>>) -> Result<Vec<Outcome>, InvalidModule> {
        chunk
            .into_iter()
            .map(|(func, body)| self.check(func, &body))
            .collect()
    }
}

/// Check every pending body; outcomes come back in the order given.
pub fn check(pending: Vec<Pending<'_>>, max_threads: usize) -> Result<Vec<Outcome>, InvalidModule> {
    let total: usize = pending.iter().map(|(_, b)| b.range().len()).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .min(max_threads)
        .min(total / MIN_BYTES_PER_THREAD)
        .max(1);
    if threads == 1 {
        return Worker::default().check_all(pending);
    }
    let chunks = split(pending, total.div_ceil(threads));
    let results: Vec<Result<Vec<Outcome>, InvalidModule>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || Worker::default().check_all(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(InvalidModule {
                        message: "the analysis of a function panicked".into(),
                        offset: None,
                    })
                })
            })
            .collect()
    });
    let mut all = Vec::new();
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

/// Contiguous chunks of about `target` body bytes each.
fn split(pending: Vec<Pending<'_>>, target: usize) -> Vec<Vec<Pending<'_>>> {
    let mut chunks = vec![Vec::new()];
    let mut size = 0;
    for item in pending {
        let len = item.1.range().len();
        if size >= target
            && let Some(last) = chunks.last()
            && !last.is_empty()
        {
            chunks.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(last) = chunks.last_mut() {
            last.push(item);
        }
    }
    chunks
}
