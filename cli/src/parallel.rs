//! Work over many users shared among the cores, in order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Items handed to a thread at a time.
const BLOCK: usize = 256;

/// `items.iter().map(f).collect()`, the items shared among the cores in
/// blocks (one thread when there is one core or one block). `done` is told
/// after each block how many items it held.
pub fn map<T, R, F>(items: &[T], f: F, done: &(dyn Fn(u64) + Sync)) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let blocks = items.len().div_ceil(BLOCK);
    let block = |i: usize| -> Vec<R> {
        let items = &items[i * BLOCK..((i + 1) * BLOCK).min(items.len())];
        let results = items.iter().map(&f).collect();
        done(items.len() as u64);
        results
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(blocks);
    if threads <= 1 {
        return (0..blocks).flat_map(block).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= blocks {
                            return results;
                        }
                        results.push((i, block(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().flat_map(|(_, block)| block).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_and_every_item_is_counted() {
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 10 * BLOCK + 7] {
            let items: Vec<usize> = (0..n).collect();
            let counted = AtomicUsize::new(0);
            let squares = map(&items, |i| i * i, &|k| {
                counted.fetch_add(k as usize, Ordering::Relaxed);
            });
            assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
            assert_eq!(counted.into_inner(), n);
        }
    }

    #[test]
    #[should_panic(expected = "item 300")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<usize> = (0..4 * BLOCK).collect();
        map(
            &items,
            |i| {
                assert_ne!(*i, 300, "item 300");
                *i
            },
            &|_| {},
        );
    }
}
