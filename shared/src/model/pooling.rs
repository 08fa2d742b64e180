use burn::tensor::{Bool, Tensor};

use crate::config::Pooling;

/// Pools token vectors `[batch, seq, hidden]` into `[batch, hidden]`. `padding` is `[batch, seq]`,
/// true at padding positions. Mean pooling averages the non-padding tokens, as
/// sentence-transformers does (a zero-length text cannot occur: [CLS] and [SEP] are always there).
pub fn pool(tokens: Tensor<3>, padding: Tensor<2, Bool>, pooling: Pooling) -> Tensor<2> {
    let [batch, _, hidden] = tokens.dims();
    match pooling {
        Pooling::Cls => tokens.narrow(1, 0, 1).reshape([batch, hidden]),
        Pooling::Mean => {
            if let Some(pooled) = super::cube_rows::mean_pool(&tokens, &padding) {
                return pooled;
            }
            let keep = padding.bool_not().float().unsqueeze_dim::<3>(2); // [b, s, 1]
            let summed = (tokens * keep.clone()).sum_dim(1).reshape([batch, hidden]);
            let counts = keep.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
            summed / counts
        }
    }
}

/// Divides each row by its L2 norm (rows of zeros stay zero), as `torch.nn.functional.normalize`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    if let Some(y) = super::cube_rows::l2_normalize(&x) {
        return y;
    }
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
