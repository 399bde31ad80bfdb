pub mod rowbinary;
pub mod rows;
pub mod schema;
