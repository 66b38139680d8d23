// The bnn-edge Android library (AAR): the Java wrapper in java/src/main/java plus libbnn_android.so for each ABI,
// built from the Rust crate in this directory by cargo-ndk before every build. See README.md.
plugins {
    id("com.android.library") version "8.7.3"
}

val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val jniLibsDir = layout.buildDirectory.dir("rustJniLibs")
val workspaceDir = projectDir.parentFile

android {
    namespace = "io.bnnedge"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        minSdk = 24
        ndk {
            abiFilters += abis
        }
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        java.srcDirs("java/src/main/java")
        manifest.srcFile("java/src/main/AndroidManifest.xml")
        jniLibs.srcDirs(jniLibsDir)
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        // Keep the .so files uncompressed and page-aligned in the APK (16 KB alignment, see .cargo/config.toml).
        jniLibs.useLegacyPackaging = false
    }
}

// cargo-ndk (`cargo install cargo-ndk`) builds the library for every ABI into build/rustJniLibs/<abi>/ with the
// workspace's size-optimised, stripped `mobile` profile (Cargo.toml).
// The 16 KB page-size link flag comes from the workspace's .cargo/config.toml.
val cargoNdk = tasks.register<Exec>("cargoNdk") {
    workingDir = workspaceDir
    val targets = abis.flatMap { listOf("-t", it) }
    commandLine(
        listOf("cargo", "ndk") + targets +
            listOf("--platform", "24", "-o", jniLibsDir.get().asFile.path, "build", "--profile", "mobile", "-p", "bnn-android")
    )
}

tasks.named("preBuild") {
    dependsOn(cargoNdk)
}
