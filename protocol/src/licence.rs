//! SPDX licence expressions and share-alike compatibility.
