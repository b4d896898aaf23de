pub mod zitadel_standin;
