//! Adam (Kingma & Ba 2015) over named candle variables, with its state exposed so checkpoints can save and
//! restore it exactly.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Adam with bias correction. State is one first and second moment per variable.
pub struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub t: u64,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>) -> Result<Self> {
        let m = vars.iter().map(|(_, v)| v.as_tensor().zeros_like()).collect::<Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self { vars, m, v, t: 0 })
    }

    /// One update with step size `lr`. Variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.t += 1;
        let c1 = 1.0 - BETA1.powi(self.t as i32);
        let c2 = 1.0 - BETA2.powi(self.t as i32);
        for (k, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached: the moments must not keep the autograd graph of every past step alive.
            let g = g.detach();
            self.m[k] = ((&self.m[k] * BETA1)? + (&g * (1.0 - BETA1))?)?.detach();
            self.v[k] = ((&self.v[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?.detach();
            let m_hat = (&self.m[k] / c1)?;
            let v_hat = (&self.v[k] / c2)?;
            let update = (m_hat / v_hat.sqrt()?.affine(1.0, EPS)?)?;
            var.set(&(var.as_tensor() - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The variables and the state tensors, named `adam.m.{name}` and `adam.v.{name}`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (k, (name, _)) in self.vars.iter().enumerate() {
            out.push((format!("adam.m.{name}"), self.m[k].clone()));
            out.push((format!("adam.v.{name}"), self.v[k].clone()));
        }
        out
    }

    /// Restores a moment tensor by its state name; returns false if the name is not one of ours.
    pub fn set_state(&mut self, name: &str, value: Tensor) -> bool {
        for (k, (var_name, _)) in self.vars.iter().enumerate() {
            if name.strip_prefix("adam.m.") == Some(var_name) {
                self.m[k] = value;
                return true;
            }
            if name.strip_prefix("adam.v.") == Some(var_name) {
                self.v[k] = value;
                return true;
            }
        }
        false
    }

    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_minimises_a_quadratic() {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("x".into(), x.clone())]).unwrap();
        for _ in 0..500 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            adam.step(&loss.backward().unwrap(), 0.05).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|v| v.abs() < 1e-2), "{v:?}");
    }
}
