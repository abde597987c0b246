//! NumPy `.npy` files (format versions 1.0-3.0, numpy/lib/format.py), as the Background Challenge ships its
//! foreground masks (`fg_mask/val/<class>/<name>.npy`, Xiao et al. 2020). The release's generator
//! (`rabbit-abacus/roleofimagebackgrounds`, main.py) writes grabCut masks as `uint8` 0/1 arrays of shape [h, w];
//! the reader also takes the other dtypes a user's masks commonly come in (bool, signed/unsigned integers, float)
//! and both memory orders.
//!
//! Hand-written: the header is one Python dict literal with three keys, and we need a few dtypes only, which is
//! shorter than wiring a general crate through. [`write_u8`] reproduces `numpy.save` byte for byte (header padding
//! included) so our masks are indistinguishable from NumPy's; `tests/fixtures/npy/` holds files written by NumPy.
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`: the data starts at a multiple of 64 bytes.
const ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`: spare header room for the first axis to grow.
const GROWTH_DIGITS: usize = 21;

/// Element types the reader understands (the `descr` of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Dtype {
    fn parse(descr: &str) -> Option<(Dtype, bool)> {
        // (type, big endian). '|' and '=' mean not applicable / native (little on every platform we build for).
        let (order, code) = descr.split_at(descr.len().min(1));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let t = match code {
            "b1" => Dtype::Bool,
            "u1" => Dtype::U8,
            "i1" => Dtype::I8,
            "u2" => Dtype::U16,
            "i2" => Dtype::I16,
            "u4" => Dtype::U32,
            "i4" => Dtype::I32,
            "u8" => Dtype::U64,
            "i8" => Dtype::I64,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return None,
        };
        Some((t, big))
    }

    fn width(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

/// A decoded array: its shape and every element as f64, in C (row-major) order whatever the file's order was.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data: Vec<f64>,
}

/// Why a `.npy` file could not be read; the caller adds the path.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file (bad magic)")]
    Magic,
    #[error("unsupported .npy version {0}.{1}")]
    Version(u8, u8),
    #[error("truncated .npy file: {0}")]
    Truncated(&'static str),
    #[error("bad .npy header {header:?}: {why}")]
    Header { header: String, why: String },
    #[error("unsupported dtype {0:?} (supported: b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)")]
    Dtype(String),
    #[error("data holds {found} bytes, shape {shape:?} of {dtype:?} needs {needed}")]
    Size {
        shape: Vec<usize>,
        dtype: Dtype,
        needed: usize,
        found: usize,
    },
}

fn header_err(header: &str, why: impl Into<String>) -> NpyError {
    NpyError::Header {
        header: header.to_string(),
        why: why.into(),
    }
}

/// The text after `'key':` in the header dict, trimmed.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str, NpyError> {
    let pat = format!("'{key}':");
    let at = header
        .find(&pat)
        .ok_or_else(|| header_err(header, format!("no '{key}' key")))?;
    Ok(header[at + pat.len()..].trim_start())
}

fn parse_header(header: &str) -> Result<(String, bool, Vec<usize>), NpyError> {
    let descr = dict_value(header, "descr")?;
    let quote = descr
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| {
            header_err(
                header,
                "descr is not a string (structured dtypes are not supported)",
            )
        })?;
    let descr = descr[1..]
        .split(quote)
        .next()
        .ok_or_else(|| header_err(header, "unterminated descr"))?
        .to_string();
    let fortran = dict_value(header, "fortran_order")?;
    let fortran = if fortran.starts_with("True") {
        true
    } else if fortran.starts_with("False") {
        false
    } else {
        return Err(header_err(
            header,
            "fortran_order is neither True nor False",
        ));
    };
    let shape = dict_value(header, "shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| header_err(header, "shape is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| header_err(header, format!("bad dimension {s:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((descr, fortran, shape))
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyError::Magic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, len) = match major {
        1 => {
            let b = bytes
                .get(8..10)
                .ok_or(NpyError::Truncated("header length"))?;
            (2, u16::from_le_bytes([b[0], b[1]]) as usize)
        }
        2 | 3 => {
            let b = bytes
                .get(8..12)
                .ok_or(NpyError::Truncated("header length"))?;
            (4, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        _ => return Err(NpyError::Version(major, minor)),
    };
    let start = 8 + len_bytes;
    let header = bytes
        .get(start..start + len)
        .ok_or(NpyError::Truncated("header"))?;
    // v1/v2 headers are latin-1 (ASCII in practice), v3 UTF-8.
    let header = String::from_utf8_lossy(header);
    let (descr, fortran, shape) = parse_header(&header)?;
    let (dtype, big) = Dtype::parse(&descr).ok_or_else(|| NpyError::Dtype(descr.clone()))?;
    let n: usize = shape.iter().product();
    let w = dtype.width();
    let body = &bytes[start + len..];
    if body.len() < n * w {
        return Err(NpyError::Size {
            shape,
            dtype,
            needed: n * w,
            found: body.len(),
        });
    }
    let mut data = Vec::with_capacity(n);
    for chunk in body[..n * w].chunks_exact(w) {
        let mut b = [0u8; 8];
        if big {
            for (k, v) in chunk.iter().rev().enumerate() {
                b[k] = *v;
            }
        } else {
            b[..w].copy_from_slice(chunk);
        }
        let v = match dtype {
            Dtype::Bool | Dtype::U8 => b[0] as f64,
            Dtype::I8 => b[0] as i8 as f64,
            Dtype::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            Dtype::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            Dtype::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::U64 => u64::from_le_bytes(b) as f64,
            Dtype::I64 => i64::from_le_bytes(b) as f64,
            Dtype::F64 => f64::from_le_bytes(b),
        };
        data.push(v);
    }
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(NpyArray { shape, dtype, data })
}

/// Reorders column-major data into row-major.
fn fortran_to_c(data: &[f64], shape: &[usize]) -> Vec<f64> {
    let nd = shape.len();
    // Column-major strides.
    let mut fstride = vec![1usize; nd];
    for k in 1..nd {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; nd];
    for _ in 0..data.len() {
        out.push(data[idx.iter().zip(&fstride).map(|(i, s)| i * s).sum::<usize>()]);
        // Increment the C-order multi-index (last axis fastest).
        for k in (0..nd).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// Python's `repr` of a shape tuple: `()`, `(5,)`, `(3, 4)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [a] => format!("({a},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `.npy` v1.0 bytes of a C-order `uint8` array, identical to `numpy.save(f, a)` for `a.dtype == np.uint8`.
pub fn write_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy::write_u8: shape {shape:?} does not match {} bytes",
        data.len()
    );
    let mut header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': {}, }}",
        shape_repr(shape)
    );
    if let Some(first) = shape.first() {
        header.push_str(&" ".repeat(GROWTH_DIGITS.saturating_sub(first.to_string().len())));
    }
    // Magic (6) + version (2) + u16 length (2) + header + '\n', padded with spaces to a multiple of ALIGN; like
    // numpy, a prefix that is already aligned still gets ALIGN spaces.
    let hlen = header.len() + 1;
    let pad = ALIGN - (10 + hlen) % ALIGN;
    let mut out = Vec::with_capacity(10 + hlen + pad + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&((hlen + pad) as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// Reads a 2-D foreground mask ([h, w], or [h, w, 1] / [1, h, w]) as row-major 0/1 bytes: integers and booleans
/// are foreground when non-zero, floats when >= 0.5. Returns (h, w, mask).
pub fn read_mask(path: &Path) -> Result<(usize, usize, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let a = parse(&bytes).map_err(|e| e.to_string())?;
    let dims: Vec<usize> = match a.shape.as_slice() {
        [h, w] => vec![*h, *w],
        [h, w, 1] | [1, h, w] => vec![*h, *w],
        other => {
            return Err(format!(
                "a mask must have shape [h, w] (or [h, w, 1] / [1, h, w]), got {other:?}"
            ))
        }
    };
    if dims[0] == 0 || dims[1] == 0 {
        return Err(format!("empty mask of shape {:?}", a.shape));
    }
    let float = matches!(a.dtype, Dtype::F32 | Dtype::F64);
    let mask = a
        .data
        .iter()
        .map(|&v| {
            if float {
                (v >= 0.5) as u8
            } else {
                (v != 0.0) as u8
            }
        })
        .collect();
    Ok((dims[0], dims[1], mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_u8_with_every_header_length() {
        for shape in [
            vec![0usize],
            vec![5],
            vec![3, 4],
            vec![64, 64],
            vec![2, 3, 4],
        ] {
            let n: usize = shape.iter().product();
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let bytes = write_u8(&shape, &data);
            let prefix = bytes.len() - n;
            assert_eq!(prefix % ALIGN, 0, "{shape:?}");
            assert_eq!(bytes[prefix - 1], b'\n');
            let a = parse(&bytes).unwrap();
            assert_eq!(a.shape, shape);
            assert_eq!(a.dtype, Dtype::U8);
            assert_eq!(a.data, data.iter().map(|&v| v as f64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn fortran_order_is_transposed_to_c_order() {
        // [[0, 1, 2], [3, 4, 5]] stored column-major: 0 3 1 4 2 5.
        let f = fortran_to_c(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0], &[2, 3]);
        assert_eq!(f, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(parse(b"PK\x03\x04 not npy"), Err(NpyError::Magic)));
        let mut v = write_u8(&[2, 2], &[1, 0, 0, 1]);
        v.truncate(v.len() - 1);
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains("needs 4"), "{e}");
        let mut odd = write_u8(&[1], &[0]);
        let at = odd.windows(3).position(|w| w == b"|u1").unwrap();
        odd[at..at + 3].copy_from_slice(b"<c8");
        let e = parse(&odd).unwrap_err().to_string();
        assert!(e.contains("unsupported dtype \"<c8\""), "{e}");
    }
}
