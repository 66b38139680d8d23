//! The bulk Gaussian noise of a local-reparameterization prediction, kept for the next predictions with the same
//! seed and sample count: they draw the same values (a seed fixes its stream, and a network of Bayesian dense
//! layers draws the same counts in the same order whatever its input), so a [`Predictor`](crate::Predictor) reads
//! them back instead of drawing them again. The bits are the drawn ones; only the time changes. A prediction is
//! recorded only when the one before it had the same seed and count, so that callers who change the seed every
//! time do not pay for copies they never replay.

use super::SeededRng;
use crate::kernels::Isa;
use crate::prelude::*;

/// The noise of one prediction, in the order it was drawn, and the seed and sample count it belongs to. Its room
/// is sized once; a prediction whose noise does not fit draws it as usual.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoiseTape {
    /// Values one sample draws (0: the tape is never used).
    per_sample: usize,
    values: Vec<f32>,
    /// The (seed, samples) whose whole noise `values` holds; `None` after a recording that failed or overflowed.
    holds: Option<(u64, usize)>,
    /// The last prediction's (seed, samples).
    last: Option<(u64, usize)>,
    /// The recording ran out of room: it holds part of the noise only.
    overflowed: bool,
}

impl NoiseTape {
    /// A tape for predictions that draw `per_sample` values a sample (0: never used), with room for `samples`.
    pub(crate) fn new(per_sample: usize, samples: usize) -> Self {
        Self { per_sample, values: Vec::with_capacity(per_sample * samples), ..Self::default() }
    }

    /// Whether the noise of a prediction of `samples` samples fits.
    pub(crate) fn fits(&self, samples: usize) -> bool {
        let values = samples.saturating_mul(self.per_sample);
        values > 0 && values <= self.values.capacity()
    }

    /// The noise of a prediction of `samples` samples from `rng` (seeded with `seed`): replayed if this tape
    /// holds it, else drawn, and recorded (in place of the values held) if the last prediction had the same seed
    /// and count.
    pub(crate) fn noise<'a>(&'a mut self, rng: &'a mut SeededRng, seed: u64, samples: usize) -> Noise<'a> {
        let key = Some((seed, samples));
        let repeated = core::mem::replace(&mut self.last, key) == key;
        if self.holds == key {
            return Noise::Replay(rng, &self.values);
        }
        if !repeated {
            return Noise::Stream(rng);
        }
        (self.holds, self.overflowed) = (None, false);
        self.values.clear();
        Noise::Record(rng, self)
    }

    /// Ends a recorded prediction of `samples` samples from `seed`: its noise is held for the next one if the
    /// prediction `succeeded` (a failed one may have stopped drawing early) and all of it was recorded.
    pub(crate) fn recorded(&mut self, seed: u64, samples: usize, succeeded: bool) {
        self.holds = (succeeded && !self.overflowed).then_some((seed, samples));
    }
}

/// Where a block's standard-normal noise comes from: the stream, the stream recorded on a tape, or a tape's values.
pub(crate) enum Noise<'a> {
    Stream(&'a mut SeededRng),
    /// Drawn from the stream and recorded. Only for networks whose stream draws nothing but these bulk values
    /// (Bayesian dense layers), as for `Replay`.
    Record(&'a mut SeededRng, &'a mut NoiseTape),
    /// The values not yet replayed. The stream does not advance while they are.
    Replay(&'a mut SeededRng, &'a [f32]),
}

impl<'a> Noise<'a> {
    /// The next `n` values when replaying (`None` when drawing, or past the tape's end).
    pub(crate) fn replayed(&mut self, n: usize) -> Option<&'a [f32]> {
        let Noise::Replay(_, values) = self else { return None };
        let rest: &'a [f32] = values;
        let (next, after) = rest.split_at_checked(n)?;
        *values = after;
        Some(next)
    }

    /// Fills `out` from the stream on `isa`, recording it when recording.
    pub(crate) fn draw(&mut self, isa: Isa, out: &mut [f32]) {
        self.rng().fill_gaussian_on(isa, out);
        if let Noise::Record(_, tape) = self {
            match tape.values.len() + out.len() <= tape.values.capacity() {
                true => tape.values.extend_from_slice(out),
                false => tape.overflowed = true,
            }
        }
    }

    /// The next `out.len()` values: replayed, or drawn into `out`.
    pub(crate) fn next<'b>(&mut self, isa: Isa, out: &'b mut [f32]) -> &'b [f32]
    where
        'a: 'b,
    {
        match self.replayed(out.len()) {
            Some(values) => values,
            None => {
                self.draw(isa, out);
                out
            }
        }
    }

    /// The stream itself, for the layers that draw other values (dropout masks, sampled kernels).
    pub(crate) fn rng(&mut self) -> &mut SeededRng {
        match self {
            Noise::Stream(rng) | Noise::Record(rng, _) | Noise::Replay(rng, _) => rng,
        }
    }
}
