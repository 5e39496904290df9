package main

// Linux has every facility the rows use: each one must run.
const expectRows = allRun
